"""/digest: admins manage the channels that receive the daily digest."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import discord
from discord import app_commands
from discord.ext import commands

from bot.config import parse_hhmm
from bot.delivery.scheduler import digest_day_for, previous_post_time
from bot.delivery.sender import Outcome, send_kwargs
from bot.digest.render import digest_messages
from bot.labels import LABELS, normalize_label
from bot.models import DigestFilters
from bot.runtime.tree import UserError, parse_date_option
from bot.store import feeds as feed_store
from bot.store import ledger
from bot.store.feeds import Feed
from bot.suggest import did_you_mean
from bot.text import sanitize, truncate

if TYPE_CHECKING:
    from bot.runtime.client import PaperBot

log = logging.getLogger(__name__)

FeedChannel = discord.TextChannel | discord.ForumChannel
LAYOUT_CHOICES = [app_commands.Choice(name=n, value=n) for n in ("compact", "full")]
EMPTY_CHOICES = [
    app_commands.Choice(name="post a short note", value="note"),
    app_commands.Choice(name="post nothing", value="skip"),
]
SOURCE_NAMES = ("hf", "arxiv", "digest")
MENTIONS = discord.AllowedMentions.none()


def parse_tags(text: str | None) -> tuple[str, ...]:
    """Comma-separated labels; an unknown one raises a UserError with suggestions."""
    if not text:
        return ()
    tags = []
    for raw in text.split(","):
        if not raw.strip():
            continue
        label = normalize_label(raw)
        if label is None:
            hint = did_you_mean(raw.strip(), LABELS, cutoff=0.4)
            raise UserError(f"Unknown tag “{sanitize(raw.strip())}”{hint}. See `/tags`.")
        tags.append(label)
    return tuple(dict.fromkeys(tags))


def parse_keywords(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(dict.fromkeys(word.strip() for word in text.split(",") if word.strip()))


def parse_sources(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    sources = tuple(dict.fromkeys(s.strip().lower() for s in text.split(",") if s.strip()))
    unknown = [s for s in sources if s not in SOURCE_NAMES]
    if unknown or not sources:
        raise UserError(f"Sources are a comma-separated list of {', '.join(SOURCE_NAMES)}.")
    return sources


def check_time(text: str) -> str:
    try:
        at = parse_hhmm(text)
    except ValueError:
        raise UserError(f"“{sanitize(text)}” is not a time; use HH:MM, e.g. 09:30.") from None
    return f"{at.hour:02d}:{at.minute:02d}"


def check_zone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"“{sanitize(text)}” is not a time zone; use an IANA name such as Europe/Berlin."
        ) from None
    return text


async def zone_autocomplete(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    zones = sorted(available_timezones())
    lowered = current.lower()
    first = [z for z in zones if z.lower().startswith(lowered)]
    rest = [z for z in zones if lowered in z.lower() and z not in first]
    return [app_commands.Choice(name=z, value=z) for z in (first + rest)[:25]]


async def tag_list_autocomplete(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    cog = interaction.client.get_cog("SearchCog")
    if cog is None:
        return []
    # Digest filters take the vocabulary's labels only (parse_tags).
    return await cog.tag_list_autocomplete(interaction, current, vocabulary_only=True)


def describe_feed(feed: Feed) -> str:
    filters = feed.filters
    parts = [
        f"<#{feed.channel_id}> at {feed.post_time} {feed.timezone}",
        f"sources {', '.join(feed.sources)}",
        f"layout {feed.layout}" + (", thread" if feed.thread else ""),
    ]
    if filters.include_tags:
        parts.append("tags " + ", ".join(filters.include_tags))
    if filters.exclude_tags:
        parts.append("not " + ", ".join(filters.exclude_tags))
    if filters.include_keywords:
        parts.append("keywords " + ", ".join(sanitize(k) for k in filters.include_keywords))
    if filters.exclude_keywords:
        parts.append("without " + ", ".join(sanitize(k) for k in filters.exclude_keywords))
    if filters.min_upvotes:
        parts.append(f"≥{filters.min_upvotes} upvotes")
    if filters.max_papers:
        parts.append(f"≤{filters.max_papers} papers")
    if feed.origin == "config":
        parts.append("from config.toml")
    state = f" — **paused**: {sanitize(feed.pause_reason or '')}" if feed.paused else ""
    name = f"**{sanitize(feed.name)}**: " if feed.name else ""
    return f"{name}{'; '.join(parts)}{state}"


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class DigestCommands(app_commands.Group, name="digest", description="Manage daily paper digests"):
    """Every subcommand needs the Manage Server permission."""

    def __init__(self, bot: PaperBot) -> None:
        super().__init__()
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        # default_permissions only hides the commands; enforce it on every call too.
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    async def _feed(self, interaction: discord.Interaction, channel: FeedChannel) -> Feed:
        feed = await feed_store.get_feed_by_channel(self.bot.db, channel.id)
        if feed is None or feed.guild_id != interaction.guild_id:
            raise UserError(f"{channel.mention} has no digest. Create one with `/digest setup`.")
        return feed

    @app_commands.command(name="setup", description="Post the daily digest in a channel")
    @app_commands.describe(
        channel="Text or forum channel for the digest",
        post_time="Local time to post, HH:MM (default 09:00)",
        timezone="IANA time zone of post_time (default UTC)",
        layout="compact: up to 10 papers a message; full: one message per paper",
        thread="Open a thread for each day's digest",
        sources="Comma-separated: hf, arxiv, digest (default hf)",
        include_tags="Only papers with one of these tags (comma-separated)",
        exclude_tags="Never papers with one of these tags",
        include_keywords="Only papers mentioning one of these words or phrases",
        exclude_keywords="Never papers mentioning one of these",
        min_upvotes="Minimum Hugging Face upvotes",
        max_papers="At most this many papers a day",
        empty_day="What to post on a day without papers",
        name="A short name for this feed",
        alert_channel="Where to report problems (e.g. missing permissions)",
    )
    @app_commands.autocomplete(
        timezone=zone_autocomplete,
        include_tags=tag_list_autocomplete,
        exclude_tags=tag_list_autocomplete,
    )
    @app_commands.choices(layout=LAYOUT_CHOICES, empty_day=EMPTY_CHOICES)
    async def setup_feed(
        self,
        interaction: discord.Interaction,
        channel: FeedChannel,
        post_time: str = "09:00",
        timezone: str = "UTC",
        layout: str = "compact",
        thread: bool = False,
        sources: str | None = None,
        include_tags: str | None = None,
        exclude_tags: str | None = None,
        include_keywords: str | None = None,
        exclude_keywords: str | None = None,
        min_upvotes: app_commands.Range[int, 0, 100000] = 0,
        max_papers: app_commands.Range[int, 1, 100] | None = None,
        empty_day: str | None = None,
        name: app_commands.Range[str, 0, 60] = "",
        alert_channel: discord.TextChannel | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        existing = await feed_store.get_feed_by_channel(self.bot.db, channel.id)
        if existing is not None:
            raise UserError(f"{channel.mention} already has a digest; use `/digest edit`.")
        feed = Feed(
            guild_id=interaction.guild_id,
            channel_id=channel.id,
            name=name,
            post_time=check_time(post_time),
            timezone=check_zone(timezone),
            sources=parse_sources(sources) or ("hf",),
            layout=layout,
            thread=thread,
            empty_day=empty_day or "",
            filters=DigestFilters(
                include_tags=parse_tags(include_tags),
                exclude_tags=parse_tags(exclude_tags),
                include_keywords=parse_keywords(include_keywords),
                exclude_keywords=parse_keywords(exclude_keywords),
                min_upvotes=min_upvotes,
                max_papers=max_papers or 0,
            ),
        )
        feed = await feed_store.save_feed(self.bot.db, feed)
        if alert_channel is not None:
            await feed_store.set_alert_channel(self.bot.db, interaction.guild_id, alert_channel.id)
        await self.bot.digests.sync_feeds()
        log.info("guild %s: digest set up in channel %s", interaction.guild_id, channel.id)
        await interaction.response.send_message(
            f"Done. {describe_feed(feed)}.\nThe first digest comes at the next post time; "
            "`/digest preview` shows what it will look like.",
            ephemeral=True,
            allowed_mentions=MENTIONS,
        )

    @app_commands.command(name="edit", description="Change a digest's settings (and resume it)")
    @app_commands.describe(
        channel="The digest's channel",
        post_time="Local time to post, HH:MM",
        timezone="IANA time zone",
        layout="compact or full",
        thread="Open a thread for each day's digest",
        sources="Comma-separated: hf, arxiv, digest",
        include_tags="Only these tags (comma-separated; '-' clears)",
        exclude_tags="Never these tags ('-' clears)",
        include_keywords="Only papers mentioning these ('-' clears)",
        exclude_keywords="Never papers mentioning these ('-' clears)",
        min_upvotes="Minimum upvotes",
        max_papers="At most this many papers a day",
        empty_day="What to post on a day without papers",
        name="A short name",
    )
    @app_commands.autocomplete(
        timezone=zone_autocomplete,
        include_tags=tag_list_autocomplete,
        exclude_tags=tag_list_autocomplete,
    )
    @app_commands.choices(layout=LAYOUT_CHOICES, empty_day=EMPTY_CHOICES)
    async def edit_feed(
        self,
        interaction: discord.Interaction,
        channel: FeedChannel,
        post_time: str | None = None,
        timezone: str | None = None,
        layout: str | None = None,
        thread: bool | None = None,
        sources: str | None = None,
        include_tags: str | None = None,
        exclude_tags: str | None = None,
        include_keywords: str | None = None,
        exclude_keywords: str | None = None,
        min_upvotes: app_commands.Range[int, 0, 100000] | None = None,
        max_papers: app_commands.Range[int, 1, 100] | None = None,
        empty_day: str | None = None,
        name: app_commands.Range[str, 0, 60] | None = None,
    ) -> None:
        feed = await self._feed(interaction, channel)
        changes: dict[str, object] = {}
        filters: dict[str, object] = {}
        if post_time is not None:
            changes["post_time"] = check_time(post_time)
        if timezone is not None:
            changes["timezone"] = check_zone(timezone)
        for key, value in (("layout", layout), ("thread", thread), ("name", name)):
            if value is not None:
                changes[key] = value
        if empty_day is not None:
            changes["empty_day"] = empty_day
        if sources is not None:
            changes["sources"] = parse_sources(sources)
        for key, value, parse in (
            ("include_tags", include_tags, parse_tags),
            ("exclude_tags", exclude_tags, parse_tags),
            ("include_keywords", include_keywords, parse_keywords),
            ("exclude_keywords", exclude_keywords, parse_keywords),
        ):
            if value is not None:
                filters[key] = () if value.strip() == "-" else parse(value)
        if min_upvotes is not None:
            filters["min_upvotes"] = min_upvotes
        if max_papers is not None:
            filters["max_papers"] = max_papers
        updated = replace(feed, filters=replace(feed.filters, **filters), **changes)
        updated = await feed_store.save_feed(self.bot.db, replace(updated, origin="command"))
        # A digest planned ahead with the old settings (nothing sent yet) is planned again.
        await ledger.discard_unsent_plans(self.bot.db, feed.id)
        if feed.paused:
            await feed_store.set_paused(self.bot.db, feed.id, False)
            updated = replace(updated, paused=False, pause_reason=None)
        await self.bot.digests.sync_feeds()
        resumed = " The digest is resumed." if feed.paused else ""
        await interaction.response.send_message(
            f"Updated. {describe_feed(updated)}.{resumed}",
            ephemeral=True,
            allowed_mentions=MENTIONS,
        )

    @app_commands.command(name="remove", description="Stop posting the digest in a channel")
    @app_commands.describe(channel="The digest's channel")
    async def remove_feed(self, interaction: discord.Interaction, channel: FeedChannel) -> None:
        feed = await self._feed(interaction, channel)
        await feed_store.delete_feed(self.bot.db, feed.guild_id, feed.channel_id)
        await self.bot.digests.sync_feeds()
        note = (
            " (it is declared in config.toml and returns on restart)"
            if (feed.origin == "config")
            else ""
        )
        await interaction.response.send_message(
            f"Removed the digest of {channel.mention}{note}.",
            ephemeral=True,
            allowed_mentions=MENTIONS,
        )

    @app_commands.command(name="list", description="The digests of this server")
    async def list_feeds(self, interaction: discord.Interaction) -> None:
        feeds = await feed_store.list_feeds(self.bot.db, interaction.guild_id)
        if not feeds:
            text = "No digests yet. Create one with `/digest setup`."
        else:
            text = "\n".join(f"• {describe_feed(feed)}" for feed in feeds)
        await interaction.response.send_message(
            text[:2000], ephemeral=True, allowed_mentions=MENTIONS
        )

    def _default_day(self, feed: Feed) -> date:
        return digest_day_for(previous_post_time(feed, datetime.now(UTC)))

    @app_commands.command(name="preview", description="See a digest as it would be posted")
    @app_commands.describe(channel="The digest's channel", day="YYYY-MM-DD (default: latest)")
    async def preview(
        self, interaction: discord.Interaction, channel: FeedChannel, day: str | None = None
    ) -> None:
        feed = await self._feed(interaction, channel)
        when = parse_day_option(day) if day else self._default_day(feed)
        papers = await self.bot.deliverer.select_papers(feed, when)
        if not papers:
            await interaction.response.send_message(
                f"No stored papers for {when} pass this digest's filters.",
                ephemeral=True,
                allowed_mentions=MENTIONS,
            )
            return
        payloads = digest_messages(when, papers, layout=feed.layout, feed_name=feed.name or None)
        first = send_kwargs(payloads[0])
        more = f" (and {len(payloads) - 1} more messages)" if len(payloads) > 1 else ""
        await interaction.response.send_message(
            content=f"Preview of {when}: {len(papers)} papers{more}.",
            embeds=first["embeds"],
            ephemeral=True,
            allowed_mentions=MENTIONS,
        )

    @app_commands.command(name="post-now", description="Post a day's digest now")
    @app_commands.describe(channel="The digest's channel", day="YYYY-MM-DD (default: latest)")
    async def post_now(
        self, interaction: discord.Interaction, channel: FeedChannel, day: str | None = None
    ) -> None:
        feed = await self._feed(interaction, channel)
        when = parse_day_option(day) if day else self._default_day(feed)
        await interaction.response.defer(ephemeral=True, thinking=True)
        if feed.paused:
            await feed_store.set_paused(self.bot.db, feed.id, False)
            feed = replace(feed, paused=False, pause_reason=None)
        for source in feed.sources:
            await self.bot.digests.ensure_fetched(source, when)
        outcome = await self.bot.digests.deliver(feed, when)
        await interaction.followup.send(
            post_now_reply(outcome, when, channel.mention),
            ephemeral=True,
            allowed_mentions=MENTIONS,
        )

    @app_commands.command(name="status", description="Health of this server's digests")
    async def status(self, interaction: discord.Interaction) -> None:
        feeds = await feed_store.list_feeds(self.bot.db, interaction.guild_id)
        if not feeds:
            await interaction.response.send_message(
                "No digests yet.", ephemeral=True, allowed_mentions=MENTIONS
            )
            return
        lines = []
        for feed in feeds:
            recent = await ledger.recent_deliveries(self.bot.db, feed.id, limit=1)
            last = describe_delivery(recent[0]) if recent else "nothing posted yet"
            upcoming = self.bot.digests.next_post(feed.id)
            next_text = (
                f"next: <t:{int(upcoming.timestamp())}:f>"
                if upcoming and not feed.paused
                else "next: —"
            )
            state = f"⚠️ paused: {sanitize(feed.pause_reason or '')}" if feed.paused else "✅ active"
            if self.bot.get_channel(feed.channel_id) is None:
                fix = "; remove it from config.toml" if feed.origin == "config" else ""
                state = f"⚠️ channel gone (deleted, or I can't see it): nothing can be posted{fix}"
            lines.append(f"<#{feed.channel_id}> {state}; {last}; {next_text}")
        fetches = []
        for source in sorted({source for feed in feeds for source in feed.sources}):
            if source == "digest":
                fetches.append("digest: imported by hand")
                continue
            latest = await ledger.latest_fetch(self.bot.db, source)
            if latest is None:
                fetches.append(f"{source}: not fetched yet")
            else:
                day, state, papers, error = latest
                detail = (
                    f" ({sanitize(truncate(error, 120))})" if error and state == "failed" else ""
                )
                fetches.append(f"{source}: {day} {state}, {papers} papers{detail}")
        lines.append("Fetches: " + "; ".join(fetches))
        alert = await feed_store.get_alert_channel(self.bot.db, interaction.guild_id)
        lines.append(f"Alerts go to <#{alert}>." if alert else "No alert channel set.")
        if self.bot.llm is not None:
            lines.append(await self.bot.llm.usage_line())
        await interaction.response.send_message(
            "\n".join(lines)[:2000], ephemeral=True, allowed_mentions=MENTIONS
        )

    @app_commands.command(name="alerts", description="Where to report digest problems")
    @app_commands.describe(channel="Channel for alerts (omit to turn alerts off)")
    async def alerts(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        assert interaction.guild_id is not None
        await feed_store.set_alert_channel(
            self.bot.db, interaction.guild_id, channel.id if channel else None
        )
        text = f"Alerts go to {channel.mention}." if channel else "Alerts are off."
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=MENTIONS)


def post_now_reply(outcome: Outcome, when: date, where: str) -> str:
    """What `/digest post-now` did, truthfully (a failure says when the next attempt is)."""
    partial = f" ({outcome.sent} of {outcome.total} message(s) sent)" if outcome.sent else ""
    if outcome.status == "done":
        return f"Posted {outcome.sent} message(s) for {when} in {where}."
    if outcome.status == "skipped":
        return f"The digest for {when} was already posted in {where}."
    if outcome.status == "paused":
        return f"Could not post: {sanitize(outcome.detail)}. The digest is paused."
    if outcome.status == "failed" and outcome.retry_at is not None:
        return (
            f"Posting failed{partial}: {sanitize(outcome.detail)}. Retrying automatically; "
            f"next attempt at <t:{int(outcome.retry_at.timestamp())}:T>."
        )
    if outcome.status == "expired":
        return (
            f"Posting failed{partial}: {sanitize(outcome.detail)}. The retries have reached "
            "`delivery.deadline_hours`; run `/digest post-now` again to try once more."
        )
    return sanitize(outcome.detail)


def describe_delivery(delivery: ledger.Delivery) -> str:
    """The latest delivery of a feed, for `/digest status`."""
    error = f" ({sanitize(truncate(delivery.error, 120))})" if delivery.error else ""
    if delivery.status == "retrying" and delivery.next_attempt_at is not None:
        return (
            f"last: {delivery.day} failed{error}, attempt {delivery.attempts}; retrying, "
            f"next attempt at <t:{int(delivery.next_attempt_at.timestamp())}:T>"
        )
    if delivery.status == "expired":
        return f"last: {delivery.day} gave up after {delivery.attempts} attempts{error}"
    return f"last: {delivery.day} {delivery.status}{error}"


def parse_day_option(text: str) -> date:
    day = parse_date_option(text, "day")
    assert day is not None
    if day > datetime.now(UTC).date() + timedelta(days=1):
        raise UserError("That day is in the future.")
    return day


class DigestCog(commands.Cog):
    def __init__(self, bot: PaperBot) -> None:
        self.bot = bot
        self.group = DigestCommands(bot)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.group)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.group.name)


async def setup(bot: PaperBot) -> None:
    await bot.add_cog(DigestCog(bot))
