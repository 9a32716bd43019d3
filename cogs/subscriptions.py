"""/subscribe, /unsubscribe, /subscriptions and /forgetme: be mentioned for matching papers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.runtime import autocomplete
from bot.runtime.tree import UserError
from bot.store import feeds as feed_store
from bot.store import subscriptions as sub_store
from bot.subscriptions import service as sub_service
from bot.subscriptions.render import choice_name, describe
from bot.text import sanitize, truncate

if TYPE_CHECKING:
    from bot.runtime.client import PaperBot

log = logging.getLogger(__name__)

MENTIONS = discord.AllowedMentions.none()


def _reply(interaction: discord.Interaction, text: str):
    return interaction.response.send_message(
        truncate(text, 2000), ephemeral=True, allowed_mentions=MENTIONS
    )


@app_commands.guild_only()
class SubscribeCommands(
    app_commands.Group, name="subscribe", description="Be mentioned for papers"
):
    def __init__(self, bot: PaperBot) -> None:
        super().__init__()
        self.bot = bot

    async def _add(self, interaction: discord.Interaction, kind: str, value: str, dm: bool) -> None:
        assert interaction.guild_id is not None
        added = await sub_service.add_subscription(
            self.bot.db, interaction.guild_id, interaction.user.id, kind, value, dm=dm
        )
        how = "I'll send you a DM" if dm else "I'll mention you under the digest"
        await _reply(
            interaction,
            f"Subscribed to {describe(added)}. {how} when a matching "
            "paper is posted. `/subscriptions list` shows them all.",
        )

    @app_commands.command(name="tag", description="Papers with a tag")
    @app_commands.describe(
        tag="A tag such as Robotics (see /tags)", dm="By DM instead of a mention"
    )
    @app_commands.autocomplete(tag=autocomplete.any_tag)
    async def tag(self, interaction: discord.Interaction, tag: str, dm: bool = False) -> None:
        await self._add(interaction, "tag", tag, dm)

    @app_commands.command(name="keyword", description="Papers matching words (search syntax)")
    @app_commands.describe(
        query='Words, "phrases", -exclusions, OR — as in /search', dm="By DM instead of a mention"
    )
    async def keyword(
        self,
        interaction: discord.Interaction,
        query: app_commands.Range[str, 1, 200],
        dm: bool = False,
    ) -> None:
        await self._add(interaction, "keyword", query, dm)

    @app_commands.command(name="author", description="Papers by an author")
    @app_commands.describe(name="The author's name", dm="By DM instead of a mention")
    async def author(
        self,
        interaction: discord.Interaction,
        name: app_commands.Range[str, 2, 100],
        dm: bool = False,
    ) -> None:
        await self._add(interaction, "author", name, dm)

    @app_commands.command(name="role", description="Mention a role for a tag in a feed (admins)")
    @app_commands.describe(
        role="The role to mention", tag="The tag", channel="The digest's channel"
    )
    @app_commands.autocomplete(tag=autocomplete.any_tag)
    async def role(
        self,
        interaction: discord.Interaction,
        role: discord.Role,
        tag: str,
        channel: discord.TextChannel | discord.ForumChannel,
    ) -> None:
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        assert interaction.guild_id is not None
        if role.is_default():
            raise UserError("I never mention @everyone; pick a role.")
        feed = await feed_store.get_feed_by_channel(self.bot.db, channel.id)
        if feed is None or feed.guild_id != interaction.guild_id:
            raise UserError(f"{channel.mention} has no digest; create one with `/digest setup`.")
        added = await sub_service.add_subscription(
            self.bot.db,
            interaction.guild_id,
            role.id,
            "tag",
            tag,
            subscriber_type="role",
            feed_id=feed.id,
        )
        note = (
            ""
            if role.mentionable
            else (
                " Note: the role is not mentionable; give me the Mention Everyone permission "
                "or make the role mentionable, or the mention will not ping."
            )
        )
        await _reply(
            interaction,
            f"{role.mention} will be mentioned in {channel.mention} for "
            f"{sanitize(added.label, markdown=False)}.{note}",
        )


@app_commands.guild_only()
class SubscriptionsCommands(
    app_commands.Group, name="subscriptions", description="Your subscriptions in this server"
):
    def __init__(self, bot: PaperBot) -> None:
        super().__init__()
        self.bot = bot

    @app_commands.command(name="list", description="What you are subscribed to here")
    async def list_(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        subs = await sub_store.list_subscriptions(
            self.bot.db, interaction.guild_id, interaction.user.id
        )
        lines = [f"{n}. {describe(sub)}" for n, sub in enumerate(subs, start=1)]
        if not lines:
            lines = ["You have no subscriptions here. Try `/subscribe tag`."]
        status = await sub_store.get_dm_status(self.bot.db, interaction.user.id)
        if status is not None and status.closed:
            lines.append(
                "⚠️ Your DMs were closed when I last tried to send you papers, so DM "
                "subscriptions are paused. Open your DMs, then subscribe again with `dm:True`."
            )
        await _reply(interaction, "\n".join(lines))

    @app_commands.command(name="clear", description="Remove all your subscriptions here")
    async def clear(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        removed = await sub_store.clear_subscriptions(
            self.bot.db, interaction.guild_id, interaction.user.id
        )
        await _reply(interaction, f"Removed {removed} subscription(s).")


class SubscriptionsCog(commands.Cog):
    def __init__(self, bot: PaperBot) -> None:
        self.bot = bot
        self.subscribe = SubscribeCommands(bot)
        self.subscriptions = SubscriptionsCommands(bot)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.subscribe)
        self.bot.tree.add_command(self.subscriptions)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.subscribe.name)
        self.bot.tree.remove_command(self.subscriptions.name)

    @app_commands.command(name="unsubscribe", description="Remove one of your subscriptions")
    @app_commands.describe(subscription="Pick from your subscriptions")
    @app_commands.guild_only()
    async def unsubscribe(self, interaction: discord.Interaction, subscription: str) -> None:
        assert interaction.guild_id is not None
        try:
            subscription_id = int(subscription)
        except ValueError:
            raise UserError("Pick a subscription from the list.") from None
        subs = await sub_service.removable_subscriptions(
            self.bot.db,
            interaction.guild_id,
            interaction.user.id,
            is_admin=interaction.permissions.manage_guild,
        )
        target = next((s for s in subs if s.id == subscription_id), None)
        if target is None:
            raise UserError("That subscription is not yours (or is already gone).")
        await sub_service.remove_subscription(
            self.bot.db,
            interaction.guild_id,
            target.subscriber_id,
            subscription_id=target.id,
            subscriber_type=target.subscriber_type,
        )
        await _reply(interaction, f"Unsubscribed from {describe(target)}.")

    @unsubscribe.autocomplete("subscription")
    async def _unsubscribe_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        subs = await sub_service.removable_subscriptions(
            self.bot.db,
            interaction.guild_id,
            interaction.user.id,
            is_admin=interaction.permissions.manage_guild,
        )
        typed = current.lower()
        choices = [
            app_commands.Choice(name=truncate(choice_name(sub), 100), value=str(sub.id))
            for sub in subs
            if typed in choice_name(sub).lower()
        ]
        return choices[:25]

    @app_commands.command(name="forgetme", description="Delete everything I store about you")
    async def forgetme(self, interaction: discord.Interaction) -> None:
        removed = await sub_store.forget_user(self.bot.db, interaction.user.id)
        self.bot.search_sessions.forget_user(interaction.user.id)
        log.info("forgot user %s (%d subscriptions)", interaction.user.id, removed)
        await _reply(
            interaction,
            f"Done: I deleted your {removed} subscription(s) in every server and any record "
            "of your DMs. Nothing else about you is stored.",
        )


async def setup(bot: PaperBot) -> None:
    await bot.add_cog(SubscriptionsCog(bot))
