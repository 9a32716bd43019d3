"""PaperBot: the discord.py client that owns the store, the HTTP session and the scheduler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp
import discord
from discord.ext import commands

from bot.config import Config, FeedConfig
from bot.delivery.feeds import feed_filters
from bot.delivery.notify import SubscriptionPlanner
from bot.delivery.scheduler import Clock, DigestScheduler, utc_now
from bot.delivery.sender import Deliverer
from bot.llm.client import LLMClient
from bot.llm.embeddings import Embedder, embed_new
from bot.llm.enrich import enrich_ids
from bot.runtime import forget
from bot.runtime.tree import PaperTree
from bot.search.engine import SearchEngine
from bot.search.sessions import SearchSessions
from bot.search.tag_options import TagOptions
from bot.sources.fetch import Fetcher
from bot.store import feeds as feed_store
from bot.store.database import Database
from bot.store.feeds import Feed

log = logging.getLogger(__name__)

# Loaded in this order; each module has an ``async def setup(bot)``.
DEFAULT_COGS: tuple[str, ...] = (
    "cogs.admin",
    "cogs.digest",
    "cogs.search",
    "cogs.subscriptions",
    "cogs.servers",
)


def intents() -> discord.Intents:
    """Only what the bot needs; nothing privileged.

    guilds: channels and roles for permission checks; guild_messages: replies that mention
    the bot (the owner's sync command, follow-up questions in threads).
    """
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    return wanted


def feed_from_config(item: FeedConfig, config: Config) -> Feed:
    return Feed(
        guild_id=item.guild_id,
        channel_id=item.channel_id,
        name=item.name,
        post_time=item.post_time,
        timezone=item.timezone,
        sources=tuple(item.sources),
        layout=item.layout,
        thread=item.thread,
        empty_day=item.empty_day,
        filters=feed_filters(item, config),
        origin="config",
    )


async def sync_config_feeds(db: Database, config: Config) -> None:
    """Declared feeds are upserted; config feeds no longer declared are removed."""
    declared = {item.channel_id for item in config.feeds}
    for item in config.feeds:
        await feed_store.save_feed(db, feed_from_config(item, config))
    for feed in await feed_store.list_feeds(db):
        if feed.origin == "config" and feed.channel_id not in declared:
            await feed_store.delete_feed(db, feed.guild_id, feed.channel_id)
            log.info("removed feed %s: no longer in the config file", feed.label)


class PaperBot(commands.Bot):
    """The bot. Resources are created by the caller and injected (see ``bot.cli.run``)."""

    def __init__(
        self,
        *,
        config: Config,
        db: Database,
        session: aiohttp.ClientSession,
        cogs: Sequence[str] = DEFAULT_COGS,
        sync_on_start: bool = False,
        clock: Clock = utc_now,
        fetcher: Fetcher | None = None,
        llm: LLMClient | None = None,
        embedder: Embedder | None = None,
        search: SearchEngine | None = None,
        **options,
    ) -> None:
        options.setdefault("intents", intents())
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        super().__init__(
            command_prefix=commands.when_mentioned,
            tree_cls=PaperTree,
            help_command=None,
            **options,
        )
        self.config = config
        self.db = db
        self.session = session
        self.llm = llm
        self.embedder = embedder
        # Closed with the bot (its worker threads stop); one is made if none is given.
        self.search_engine = search if search is not None else SearchEngine()
        if llm is None:
            # Without an endpoint there is no /ask and no Ask button; digests use the
            # summaries made without an LLM.
            cogs = tuple(name for name in cogs if name != "cogs.ask")
        elif "cogs.ask" not in cogs:
            cogs = (*cogs, "cogs.ask")
        self.cog_names = tuple(cogs)
        self.sync_on_start = sync_on_start
        self.fetcher = fetcher if fetcher is not None else Fetcher(session, config)
        self.deliverer = Deliverer(
            self,
            db,
            config,
            ask_buttons=llm is not None,
            mention_planner=SubscriptionPlanner(self, db),
            clock=clock,
        )
        self.digests = DigestScheduler(db, config, self.fetcher, self.deliverer, clock=clock)
        self.digests.wait_ready = self.wait_until_ready
        if llm is not None or embedder is not None:
            self.digests.after_ingest = self._enrich_new_papers
        self._catch_up_task: asyncio.Task | None = None
        self.caught_up = asyncio.Event()  # set once the start-up catch-up has run
        self._reconcile_lock = asyncio.Lock()
        self._llm_check_task: asyncio.Task | None = None  # the endpoint probe at start
        # Shared by the cogs (tag autocompletes; /search pages, also forgotten by /forgetme).
        self.tag_options = TagOptions(db)
        self.search_sessions = SearchSessions()

    async def _enrich_new_papers(self, new_ids: Sequence[str]) -> None:
        """Embeddings, LLM summaries and labels for newly stored papers; never blocks a digest.

        Embedding comes first: it is local and fast, so /ask finds new papers by meaning
        at once even when the LLM is slow or down."""
        if self.embedder is not None:
            try:
                embedded = await embed_new(self.db, self.embedder, list(new_ids))
                log.info("embedded %d new papers with %s", embedded, self.embedder.name)
            except Exception:
                log.exception("embedding new papers failed; `paperbot embed` catches up")
        if self.llm is None:
            return
        try:
            report = await enrich_ids(self.db, self.llm, list(new_ids))
            log.info(
                "enriched %d new papers (%d failed, %d tokens)",
                report.enriched,
                report.failed,
                report.tokens,
            )
        except Exception:
            log.exception("enrichment of new papers failed; the non-LLM summaries stay")

    async def setup_hook(self) -> None:
        await self.db.warm()
        # Before connecting: saved search postings load in well under a second; the first
        # start after an import builds them (about 30 s at 90k papers) so that the first
        # searches are already fast (bot/search/exact.py).
        await self.search_engine.prepare_first(self.db)
        await sync_config_feeds(self.db, self.config)
        for name in self.cog_names:
            await self.load_extension(name)
        await self.digests.start()
        if self.sync_on_start:
            await self.sync_commands()
        self._catch_up_task = asyncio.create_task(self._catch_up_when_ready())
        if self.llm is not None and self.config.llm.check_on_start:
            from bot.llm.probe import log_probe

            self._llm_check_task = asyncio.create_task(log_probe(self.llm))

    async def reconcile_guilds(self) -> None:
        """Forget what depends on guilds, channels and roles that went away while the bot
        was offline (no event told it); then the feed jobs follow. Never raises."""
        try:
            async with self._reconcile_lock:
                if await forget.reconcile(self.db, forget.discord_view(self.guilds)):
                    await self.digests.sync_feeds()
        except Exception:
            log.exception("reconciling the stored feeds with Discord's guilds failed")

    async def _catch_up_when_ready(self) -> None:
        await self.wait_until_ready()
        await self.reconcile_guilds()  # before catching up: no post to a channel that is gone
        try:
            await self.digests.catch_up()
        except Exception:
            log.exception("catching up missed digests failed")
        finally:
            self.caught_up.set()

    async def sync_commands(self) -> list[str]:
        """Sync slash commands: to the configured guilds (instant) or globally."""
        synced: list[str] = []
        guild_ids = self.config.discord.command_guild_ids
        if guild_ids:
            for guild_id in guild_ids:
                guild = discord.Object(guild_id)
                self.tree.copy_global_to(guild=guild)
                commands_ = await self.tree.sync(guild=guild)
                synced.append(f"{len(commands_)} commands to guild {guild_id}")
        else:
            commands_ = await self.tree.sync()
            synced.append(f"{len(commands_)} global commands")
        log.info("synced %s", "; ".join(synced))
        return synced

    async def is_owner(self, user: discord.abc.User) -> bool:
        if self.config.discord.owner_ids:
            return user.id in self.config.discord.owner_ids
        return await super().is_owner(user)

    async def close(self) -> None:
        """Stop scheduling, let running deliveries finish their writes, then disconnect."""
        if self._catch_up_task is not None and not self._catch_up_task.done():
            self._catch_up_task.cancel()
        if self._llm_check_task is not None and not self._llm_check_task.done():
            self._llm_check_task.cancel()
        try:
            await self.digests.shutdown()
            await super().close()
        finally:
            self.search_engine.close()
