"""Delivery benchmark: the minute's fan-out to many feeds, and recovery after a crash.

    python -m bench.bench_delivery [--feeds 1000] [--layout compact|full] [--recovery-feeds 20]

Both parts go through the Discord stand-in with Discord's limits enforced (5 messages / 5 s per
channel, 50 requests/s global, answering 429 like Discord), with the real bot (PaperBot,
discord.py, APScheduler, SQLite).

Fan-out: every feed posts at the same minute M, the next real UTC minute far enough ahead for
the bot to start. The real APScheduler fires the planning job at M - 1 min and the post jobs at
M; the bot's clock runs a whole number of days behind the wall clock (so it posts the seed
fixture's day) but its minutes are the wall clock's. Times are taken at the stand-in, from M
to the first and the last accepted message. The floor is the least time Discord's limits allow
for the messages that had to be sent (global window, or one channel's window).

Recovery: a first bot process plans the day for N full-layout feeds and stops before posting
(as a crash would leave them); a second one starts after the post time and resumes them in its
catch-up. Timed from the start of catch-up to the last message; floor as above.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp

from bot.config import Config
from bot.runtime.client import PaperBot
from bot.sources.ingest import ingest
from bot.sources.markdown import parse_markdown
from bot.store import feeds as feed_store
from bot.store.database import Database, connect
from bot.store.feeds import Feed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.discord_standin import StandIn, running_bot, running_standin  # noqa: E402
from tests.discord_standin.seams import discord_py_pointed_at  # noqa: E402

SEED = ROOT / "tests" / "fixtures" / "seed_2025-01-14.md"
SEED_POST_DAY = date(2025, 1, 15)  # the seed's listing day + 1: when its digest is posted
CHANNEL_WINDOW = (5, 5.0)  # messages, seconds
GLOBAL_WINDOW = (50, 1.0)  # requests, seconds
EXPECTED = {
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
MESSAGE_ROUTE = r"^/channels/\d+/messages$"


def floor_seconds(per_channel_counts: list[int]) -> float:
    """The least time Discord's limits allow for these messages (channel -> count).

    Schedules them with perfect knowledge of both limits: one start every 1/50 s (the global
    window), and at most 5 per channel in a window that opens at the channel's first message
    and resets 5 s later (how the stand-in, like Discord, counts). The channel with the most
    messages left goes first. Returns the start time of the last message.
    """
    slot = GLOBAL_WINDOW[1] / GLOBAL_WINDOW[0]
    limit, period = CHANNEL_WINDOW
    left = [count for count in per_channel_counts if count > 0]
    opened = [-math.inf] * len(left)
    used = [0] * len(left)
    t, last = 0.0, 0.0
    remaining = sum(left)
    while remaining:
        best = -1
        for c, count in enumerate(left):
            if not count:
                continue
            if t >= opened[c] + period:
                opened[c], used[c] = t, 0
            if used[c] < limit and (best < 0 or count > left[best]):
                best = c
        if best < 0:  # every channel with messages left waits for its window
            t = min(opened[c] + period for c, count in enumerate(left) if count)
            continue
        if used[best] == 0:
            opened[best] = t
        used[best] += 1
        left[best] -= 1
        remaining -= 1
        last = t
        t += slot
    return last


def count_posts(standin: StandIn, channels: list[int]) -> tuple[int, int, int]:
    """(duplicates, misses, most messages in one channel) from what the stand-in stored."""
    duplicates = misses = per_channel = 0
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
        misses += len(EXPECTED - set(posted))
    return duplicates, misses, per_channel


async def seeded_store(folder: str, standin: StandIn, channels: list[int], **feed) -> Database:
    config_path = str(Path(folder) / "bench.db")
    async with connect(config_path) as db:
        await ingest(db, parse_markdown(SEED.read_text(encoding="utf-8")))
        for channel_id in channels:
            await feed_store.save_feed(
                db,
                Feed(guild_id=standin.guild.id, channel_id=channel_id, sources=("digest",), **feed),
            )
        await db.conn.execute("UPDATE feeds SET created_at = '2025-01-01T00:00:00Z'")
        await db.conn.commit()
    return config_path


RATE: dict[str, float] = {}  # options given on the command line


def make_bot(db: Database, session: aiohttp.ClientSession, clock: Callable[[], datetime]):
    config = Config()
    if "messages_per_second" in RATE:
        config.discord.messages_per_second = RATE["messages_per_second"]
    print(f"messages_per_second: {config.discord.messages_per_second}")
    return PaperBot(
        config=config,
        db=db,
        session=session,
        clock=clock,
        guild_ready_timeout=0.1,
        chunk_guilds_at_startup=False,
    )


async def fan_out(feed_count: int, layout: str, lead: float) -> dict[str, float]:
    async with running_standin(
        enforce_limits=True, channel_limit=CHANNEL_WINDOW, global_limit=GLOBAL_WINDOW
    ) as standin:
        channels = [
            standin.add_text_channel(standin.guild.id, f"papers-{n}").id for n in range(feed_count)
        ]
        # The scheduled minute: the first whole minute at least `lead` s away (startup and the
        # planning job, which runs a minute before, must fit in between).
        wall = datetime.now(UTC)
        minute = (wall + timedelta(seconds=lead + 60)).replace(second=0, microsecond=0)
        minute += timedelta(minutes=1)
        offset = timedelta(days=(minute.date() - SEED_POST_DAY).days)
        print(f"scheduled_minute: {minute.isoformat()} (waiting {(minute - wall).seconds} s)")
        with tempfile.TemporaryDirectory() as folder, discord_py_pointed_at(standin.url):
            path = await seeded_store(
                folder, standin, channels, layout=layout, post_time=minute.strftime("%H:%M")
            )
            async with connect(path) as db, aiohttp.ClientSession() as session:
                bot = make_bot(db, session, lambda: datetime.now(UTC) - offset)
                planned_ahead = [0]
                real_prepare = bot.digests.prepare_posts

                async def counted_prepare(*args):
                    if not RATE.get("plan_ahead", True):
                        return 0  # measure the fallback: every feed plans itself at the minute
                    planned_ahead[0] += await real_prepare(*args)
                    return planned_ahead[0]

                bot.digests.prepare_posts = counted_prepare  # type: ignore[method-assign]
                async with running_bot(bot, standin.token, ready_timeout=120):
                    # Map the wall-clock minute onto the stand-in's monotonic clock.
                    at_minute = time.monotonic() + (minute - datetime.now(UTC)).total_seconds()

                    expected = feed_count * (2 if layout == "compact" else 10)

                    def all_posted() -> bool:  # cheap: it runs on every request
                        return len(standin.world.messages) >= expected

                    await standin.wait_until(all_posted, timeout=lead + 60 + 600)
                    await asyncio.sleep(1.0)  # nothing more may arrive (a duplicate would)
        requests = [r for r in standin.requests if r.started >= at_minute - 70]
    sends = [
        r
        for r in requests
        if r.method == "POST" and r.status == 200 and r.route and "messages" in r.path
    ]
    rate_limited = [r for r in requests if r.status == 429]
    duplicates, misses, per_channel = count_posts(standin, channels)
    first = min(r.finished for r in sends) - at_minute
    last = max(r.finished for r in sends) - at_minute
    floor = floor_seconds(list(Counter(r.path for r in sends).values()))
    print(f"fanout_planned_ahead: {planned_ahead[0]} of {feed_count} feeds")
    print(f"fanout_feeds: {feed_count}")
    print(f"fanout_layout: {layout}")
    print(f"fanout_messages_sent: {len(sends)}")
    print(f"fanout_messages_per_feed: {per_channel}")
    print(f"fanout_rate_limited_responses: {len(rate_limited)} (absorbed by discord.py)")
    print(f"fanout_first_message_seconds: {first:.2f} (from the scheduled minute)")
    print(f"fanout_last_message_seconds: {last:.2f} (from the scheduled minute)")
    print(f"fanout_floor_seconds: {floor:.2f}")
    print(f"fanout_ratio_to_floor: {last / floor:.3f} (target <= 1.10, goal 1.05)")
    print(f"fanout_duplicates: {duplicates} (target 0)")
    print(f"fanout_misses: {misses} (target 0)")
    return {"ratio": last / floor, "duplicates": duplicates, "misses": misses}


async def recovery(feed_count: int) -> dict[str, float]:
    async with running_standin(
        enforce_limits=True, channel_limit=CHANNEL_WINDOW, global_limit=GLOBAL_WINDOW
    ) as standin:
        channels = [
            standin.add_text_channel(standin.guild.id, f"full-{n}").id for n in range(feed_count)
        ]
        with tempfile.TemporaryDirectory() as folder, discord_py_pointed_at(standin.url):
            path = await seeded_store(folder, standin, channels, layout="full", post_time="09:00")
            before = datetime(2025, 1, 15, 8, 59, 10, tzinfo=UTC)
            async with connect(path) as db, aiohttp.ClientSession() as session:
                first = make_bot(db, session, lambda: before)
                first.digests.catch_up = _nothing  # type: ignore[method-assign]
                async with running_bot(first, standin.token, ready_timeout=60):
                    planned = await first.digests.prepare_posts("09:00", "UTC")
            assert planned == feed_count, planned
            # The process died before 09:00; the new one starts at 09:02 and recovers.
            async with connect(path) as db, aiohttp.ClientSession() as session:
                second = make_bot(db, session, lambda: datetime(2025, 1, 15, 9, 2, tzinfo=UTC))
                started: list[float] = []
                real_catch_up = second.digests.catch_up

                async def timed_catch_up():
                    started.append(time.monotonic())
                    return await real_catch_up()

                second.digests.catch_up = timed_catch_up  # type: ignore[method-assign]
                async with running_bot(second, standin.token, ready_timeout=60):

                    def all_posted() -> bool:  # cheap: it runs on every request
                        return len(standin.world.messages) >= 10 * feed_count

                    await standin.wait_until(all_posted, timeout=300)
                    await asyncio.sleep(1.0)
    sends = [
        r
        for r in standin.requests
        if r.method == "POST" and r.status == 200 and r.route and r.started >= started[0]
    ]
    duplicates, misses, per_channel = count_posts(standin, channels)
    elapsed = max(r.finished for r in sends) - started[0]
    floor = floor_seconds(list(Counter(r.path for r in sends).values()))
    print(f"recovery_feeds: {feed_count} (layout full)")
    print(f"recovery_messages_sent: {len(sends)}")
    print(f"recovery_messages_per_feed: {per_channel}")
    print(f"recovery_seconds: {elapsed:.2f} (catch-up start to last message)")
    print(f"recovery_floor_seconds: {floor:.2f}")
    serial = feed_count * floor_seconds([per_channel])
    print(f"recovery_serial_floor_seconds: {serial:.2f} (one feed after the other)")
    print(f"recovery_ratio_to_floor: {elapsed / floor:.3f} (target <= 1.20)")
    print(f"recovery_duplicates: {duplicates} (target 0)")
    print(f"recovery_misses: {misses} (target 0)")
    return {"ratio": elapsed / floor}


async def _nothing() -> list:
    return []


async def run(args: argparse.Namespace) -> None:
    if args.recovery_feeds:
        await recovery(args.recovery_feeds)
    if args.feeds:
        await fan_out(args.feeds, args.layout, args.lead)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000, help="fan-out feeds (0: skip)")
    parser.add_argument("--layout", choices=("compact", "full"), default="compact")
    parser.add_argument("--recovery-feeds", type=int, default=20, help="0: skip")
    parser.add_argument(
        "--lead", type=float, default=20.0, help="least seconds from start to the planning job"
    )
    parser.add_argument("--messages-per-second", type=float, help="the pacer (default: config's)")
    parser.add_argument(
        "--no-plan-ahead", action="store_true", help="skip the planning job (fallback path)"
    )
    args = parser.parse_args()
    RATE["plan_ahead"] = not args.no_plan_ahead
    if args.messages_per_second:
        RATE["messages_per_second"] = args.messages_per_second
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
