"""Delivery benchmark: one day's digest to many feeds through a rate-limited Discord stand-in.

    python -m bench.bench_delivery [--feeds 1000] [--layout compact|full]

The stand-in enforces Discord's limits (5 messages / 5 s per channel, 50 requests/s
globally, answering 429 like Discord). Every feed's post job fires at once, as when all
channels share a post time. The floor is the least time those limits allow for the
requests the bot had to make; the figure is the time taken over that floor. Duplicates
and misses are counted from what the stand-in recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bot.client import PaperBot
from bot.config import Config
from bot.db import feeds as feed_store
from bot.db.database import connect
from bot.db.feeds import Feed
from bot.ingest import ingest
from bot.sources.markdown import parse_markdown

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.discord_standin import running_bot, running_standin  # noqa: E402
from tests.discord_standin.seams import discord_py_pointed_at  # noqa: E402

SEED = ROOT / "tests" / "fixtures" / "seed_2025-01-14.md"
CHANNEL_WINDOW = (5, 5.0)  # messages, seconds
GLOBAL_WINDOW = (50, 1.0)  # requests, seconds


def floor_seconds(requests: int, per_channel: int) -> float:
    """The least time the limits allow: the global window, or one channel's own window."""
    global_floor = requests / (GLOBAL_WINDOW[0] / GLOBAL_WINDOW[1])
    per_channel_floor = max(0, math.ceil(per_channel / CHANNEL_WINDOW[0]) - 1) * CHANNEL_WINDOW[1]
    return max(global_floor, per_channel_floor)


async def run(feed_count: int, layout: str) -> None:
    async with running_standin(
        enforce_limits=True, channel_limit=CHANNEL_WINDOW, global_limit=GLOBAL_WINDOW
    ) as standin:
        channels = [
            standin.add_text_channel(standin.guild.id, f"papers-{n}").id for n in range(feed_count)
        ]
        with tempfile.TemporaryDirectory() as folder, discord_py_pointed_at(standin.url):
            config = Config()
            config.database.path = str(Path(folder) / "bench.db")
            async with connect(config.database.path) as db:
                await ingest(db, parse_markdown(SEED.read_text(encoding="utf-8")))
                for channel_id in channels:
                    await feed_store.save_feed(
                        db,
                        Feed(
                            guild_id=standin.guild.id,
                            channel_id=channel_id,
                            sources=("digest",),
                            layout=layout,
                        ),
                    )
                feeds = await feed_store.list_feeds(db)
                async with aiohttp.ClientSession() as session:
                    bot = PaperBot(
                        config=config,
                        db=db,
                        session=session,
                        clock=lambda: datetime(2025, 1, 15, 9, 0, tzinfo=UTC),
                        guild_ready_timeout=0.1,
                        chunk_guilds_at_startup=False,
                    )
                    async with running_bot(bot, standin.token, ready_timeout=60):
                        await asyncio.sleep(0.5)
                        first_request = len(standin.requests)
                        started = time.perf_counter()
                        outcomes = await asyncio.gather(
                            *(bot.digests.run_post(feed.id) for feed in feeds)
                        )
                        elapsed = time.perf_counter() - started
                        requests = standin.requests[first_request:]

        sends = [r for r in requests if r.method == "POST" and r.status == 200]
        rate_limited = sum(1 for r in requests if r.status == 429)
        expected = {
            "2501.07301",
            "2501.06425",
            "2501.06252",
            "2501.06173",
            "2501.07572",
            "2501.06458",
            "2501.06282",
            "2501.06842",
            "2501.07171",
            "2501.06590",
        }
        duplicates = misses = 0
        per_channel = 0
        for channel_id in channels:
            messages = standin.messages_in(channel_id)
            per_channel = max(per_channel, len(messages))
            posted = Counter(
                embed["url"].rsplit("/", 1)[-1]
                for message in messages
                for embed in message.embeds
                if "arxiv.org/abs/" in (embed.get("url") or "")
            )
            duplicates += sum(count - 1 for count in posted.values() if count > 1)
            misses += len(expected - set(posted))
        floor = floor_seconds(len(sends), per_channel)
        print(f"feeds: {feed_count}")
        print(f"layout: {layout}")
        print(f"messages_sent: {len(sends)}")
        print(f"messages_per_feed: {per_channel}")
        print(f"outcomes: {dict(Counter(outcome.status for outcome in outcomes))}")
        print(f"rate_limited_responses: {rate_limited}")
        print(f"seconds: {elapsed:.2f}")
        print(f"floor_seconds: {floor:.2f}")
        print(f"ratio_to_floor: {elapsed / floor:.3f} (target <= 1.15)")
        print(f"duplicates: {duplicates} (target 0)")
        print(f"misses: {misses} (target 0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--layout", choices=("compact", "full"), default="compact")
    args = parser.parse_args()
    asyncio.run(run(args.feeds, args.layout))


if __name__ == "__main__":
    main()
