"""``paperbot run``: connect to Discord and post digests until stopped (SIGINT/SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from contextlib import AsyncExitStack

import aiohttp
import discord

from bot.config import Config
from bot.errors import InputError, PaperbotError
from bot.llm.client import LLMClient
from bot.llm.embeddings import make_embedder
from bot.runtime.client import PaperBot
from bot.runtime.discord_api import configure_from_env
from bot.search.engine import SearchEngine
from bot.sources.http import USER_AGENT
from bot.store.database import connect

log = logging.getLogger(__name__)


async def run_command(args: argparse.Namespace, config: Config) -> int:
    if not config.discord_token:
        raise InputError(
            "DISCORD_TOKEN is not set: create a bot in the Discord developer portal and "
            "export its token (see README, 'Running the bot')"
        )
    configure_from_env()
    async with (
        connect(config.database.path) as db,
        aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session,
        AsyncExitStack() as stack,
    ):
        llm = embedder = None
        if config.llm_enabled:
            llm = await stack.enter_async_context(LLMClient.from_config(config, db=db))
            embedder = make_embedder(config, llm)
            log.info("LLM module on: %s (retrieval: %s)", llm, embedder or "keywords only")
        else:
            # No /ask, but new papers are still embedded for `paperbot ask --retrieve-only`.
            embedder = make_embedder(config, None)
            log.info(
                "LLM module off (no llm.base_url or OPENAI_API_KEY): /ask is not registered "
                "and digests use the summaries made without an LLM"
            )
        bot = PaperBot(
            config=config,
            db=db,
            session=session,
            sync_on_start=args.sync,
            llm=llm,
            embedder=embedder,
            # Builds a large store's search index in the background; closed by bot.close().
            search=SearchEngine(),
        )
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()

        def request_stop(name: str) -> None:
            if not stopping.is_set():
                log.info("received %s; shutting down", name)
                stopping.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, request_stop, sig.name)
        runner = asyncio.create_task(bot.start(config.discord_token))
        stopper = asyncio.create_task(stopping.wait())
        try:
            done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if runner in done:
                runner.result()  # a login failure or crash: raise it
        except discord.LoginFailure:
            raise PaperbotError("Discord rejected the token (DISCORD_TOKEN)") from None
        except (aiohttp.ClientError, OSError, discord.GatewayNotFound) as exc:
            raise PaperbotError(f"cannot reach Discord: {type(exc).__name__}: {exc}") from None
        except discord.HTTPException as exc:
            raise PaperbotError(f"Discord answered {exc.status}: {exc.text or exc}") from None
        finally:
            stopper.cancel()
            await bot.close()  # the scheduler stops; running deliveries finish their writes
            if not runner.done():
                await asyncio.wait({runner}, timeout=10)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    log.info("stopped")
    return 0
