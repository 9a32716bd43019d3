"""Answers as Discord replies: within ``llm.timeout``, growing in edits, in Ask threads.

What `/ask`, the Ask button and the follow-ups in threads share (``cogs.ask`` parses their
input). An Ask thread is one per paper and channel; its conversation is kept in the store, so
follow-ups keep their context across restarts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import discord

from bot.llm.answer import Answer
from bot.llm.client import LLMUnavailable
from bot.models import Paper
from bot.store.llm_store import find_conversation, start_conversation
from bot.text import sanitize, truncate

if TYPE_CHECKING:
    from bot.runtime.client import PaperBot

log = logging.getLogger(__name__)

MENTIONS = discord.AllowedMentions.none()
PROGRESS_EVERY = 1.5  # seconds between edits that show the answer growing
# Kept back from llm.timeout for sending the final edit, so the whole reply fits in it.
REPLY_SLACK = 0.3


async def answer_text(work: Coroutine[Any, Any, Answer], budget: float, started: float) -> str:
    """Run the answer so that it (or the apology) is sent within ``budget`` seconds
    (``llm.timeout``) of ``started`` (a ``time.monotonic()``); every failure becomes one
    polite line."""
    left = budget - (time.monotonic() - started) - REPLY_SLACK
    try:
        result = await asyncio.wait_for(work, timeout=max(left, 0.05))
    except TimeoutError:
        log.warning("an answer took longer than llm.timeout (%g s)", budget)
        return (
            f"Sorry, the language model did not answer within {budget:g} s. "
            "Please try again in a moment."
        )
    except LLMUnavailable as exc:
        log.warning("LLM unavailable: %s", exc)
        return f"Sorry, I can't answer right now: {exc}"
    return result.text


def progress_edits(
    edit: Callable[[str], Awaitable[None]],
) -> Callable[[str], Awaitable[None]]:
    """An on_progress callback that edits at most every PROGRESS_EVERY seconds."""
    state = {"last": 0.0}

    async def on_progress(preview: str) -> None:
        now = time.monotonic()
        if now - state["last"] < PROGRESS_EVERY or not preview.strip():
            return
        state["last"] = now
        try:
            await edit(truncate(preview, 1900) + " ✍️")
        except discord.HTTPException as exc:
            log.debug("progress edit failed: %s", exc)

    return on_progress


def thread_intro(paper: Paper) -> str:
    return (
        f"Questions about **{truncate(sanitize(paper.title), 200)}** ({paper.url}).\n"
        "Use `/ask` here, or mention me in a reply; I answer from the stored summaries "
        "and cite the papers I use."
    )


async def _create_thread(
    parent: discord.TextChannel | discord.ForumChannel, paper: Paper
) -> discord.Thread:
    name = truncate(f"Ask: {paper.title}", 100)
    if isinstance(parent, discord.ForumChannel):
        created = await parent.create_thread(
            name=name, content=thread_intro(paper), allowed_mentions=MENTIONS
        )
        return created.thread
    thread = await parent.create_thread(
        name=name, type=discord.ChannelType.public_thread, auto_archive_duration=1440
    )
    await thread.send(thread_intro(paper), allowed_mentions=MENTIONS)
    return thread


async def thread_for_paper(
    bot: PaperBot, parent: Any, paper: Paper, guild_id: int | None
) -> tuple[Any, bool]:
    """The Ask thread about ``paper`` under ``parent``: the open one, else a new one (whose
    conversation is stored). Returns it and whether it is new; ``discord.Forbidden`` when the
    bot may not create threads there."""
    existing = await find_conversation(bot.db, parent.id, paper.arxiv_id)
    if existing is not None:
        thread = bot.get_channel(existing.thread_id)
        if thread is not None:
            return thread, False
    thread = await _create_thread(parent, paper)
    await start_conversation(
        bot.db,
        channel_id=parent.id,
        thread_id=thread.id,
        guild_id=guild_id,
        paper_id=paper.arxiv_id,
    )
    log.info("opened ask thread %s for paper %s", thread.id, paper.arxiv_id)
    return thread, True
