"""Bursts of /search: paperbot against the floor of a bot that answers at once.

    python -m bench.bench_burst --corpus PAPERS.jsonl.gz [--db bench.db] [--runs 5]

The Discord stand-in runs in this process; each bot is a separate process connected to it,
one after the other in every run: ``bench.minimal_bot`` (one slash command answered at once:
discord.py plus the stand-in, the floor) and the real ``paperbot run`` on a store holding the
corpus (imported once with ``paperbot import``). For each bot and run: 10 searches one at a
time, then a burst of 50 and a burst of 200 interactions sent at once. Latency is taken by
the stand-in, from the INTERACTION_CREATE it dispatches to the first content the user sees
(the message callback, or the follow-up / edit filling a deferred reply). Every query of a
burst is different (two words of a stored title), so no answer is reused; ``--same`` sends
one query instead. Figures are medians over the runs, with the ratio to the floor measured
in the same run. ``*_cpu`` figures are CPU milliseconds spent during each burst (from /proc,
10 ms ticks): the bot process in all, its event loop's thread, and this process (the stand-in
and its clients); with two cores, (bot + stand-in) / 2 is the least a burst can take.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from standin import StandIn, running_standin  # noqa: E402

BURSTS = (50, 200)
SINGLE = 10
DEADLINE = 3.0  # Discord's limit for the first answer to an interaction
STOPWORDS = {"with", "from", "that", "this", "into", "over", "using", "based", "towards", "via"}


def pick_queries(corpus: Path, count: int, seed: int = 20250114) -> list[str]:
    """``count`` distinct two-word queries drawn from stored titles."""
    titles: list[str] = []
    with gzip.open(corpus, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if number % 97 == 0:
                titles.append(json.loads(line).get("title") or "")
    rng = random.Random(seed)
    queries: list[str] = []
    seen: set[str] = set()
    while len(queries) < count:
        words = [
            w.lower()
            for w in re.findall(r"[A-Za-z]{4,}", rng.choice(titles))
            if w.lower() not in STOPWORDS
        ]
        if len(words) < 2:
            continue
        query = " ".join(rng.sample(words, 2))
        if query not in seen:
            seen.add(query)
            queries.append(query)
    return queries


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def cpu_ms(pid: int) -> tuple[float, float]:
    """CPU time used so far by process ``pid``, in all and on its main thread (the event
    loop's), from /proc (zeros where there is none)."""
    tick = os.sysconf("SC_CLK_TCK")

    def read(path: str) -> float:
        try:
            stat = Path(path).read_text()
        except OSError:
            return 0.0
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / tick  # utime + stime

    return read(f"/proc/{pid}/stat"), read(f"/proc/{pid}/task/{pid}/stat")


def ensure_store(db: Path, corpus: Path) -> None:
    if db.exists():
        return
    print(f"# importing {corpus.name} into {db} (once)", flush=True)
    subprocess.run(
        [sys.executable, "-m", "bot", "--db", str(db), "-q", "import", str(corpus)],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def heavier_standin(work_ms: float) -> None:
    """Make the stand-in spend ``work_ms`` of CPU on every interaction callback, as a heavier
    independent stand-in does (floor about 220 ms for a burst of 50 at about 4 ms): how the
    ratio to the floor depends on the stand-in's own cost."""
    from aiohttp import web

    original = StandIn._middleware

    @web.middleware
    async def middleware(self, request, handler):
        if request.path.endswith("/callback"):
            until = time.process_time() + work_ms / 1000
            while time.process_time() < until:
                pass
        return await original(self, request, handler)

    StandIn._middleware = middleware


def ensure_postings(db: Path) -> None:
    """Build the search postings the bot builds on its first start, so that every run measures
    the bot as it answers from then on (``--cold`` measures first starts instead: the bot builds
    them before it connects)."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bot.search.postings", str(db)],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    print(f"# search postings ready in {time.perf_counter() - started:.1f} s", flush=True)


def remove_postings(db: Path) -> None:
    from bot.search.snapshots import folder_for

    shutil.rmtree(folder_for(db), ignore_errors=True)


class BotProcess:
    """A bot in its own process, connected to the stand-in; stopped with SIGINT."""

    def __init__(self, standin: StandIn, argv: list[str], env: dict[str, str], cwd: Path):
        self.standin = standin
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.process: asyncio.subprocess.Process | None = None
        self.connect_seconds = 0.0

    async def __aenter__(self) -> BotProcess:
        before = len(self.standin.requests_to("PUT", r"/guilds/\d+/commands$"))
        started = time.perf_counter()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            *self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        await self.standin.wait_until(
            lambda: (
                len(self.standin.requests_to("PUT", r"/guilds/\d+/commands$")) > before
                and self.standin.live_sessions()
                and all(s.ready.is_set() for s in self.standin.live_sessions())
            ),
            timeout=240,  # a first start builds the search postings before it connects
            what="the bot to connect and sync",
        )
        self.connect_seconds = time.perf_counter() - started
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                _, stderr = await asyncio.wait_for(self.process.communicate(), timeout=30)
            except TimeoutError:
                self.process.kill()
                _, stderr = await self.process.communicate()
            if b"Traceback" in (stderr or b""):
                print(stderr.decode(errors="replace")[-2000:], file=sys.stderr)
        await self.standin.wait_until(
            lambda: not self.standin.live_sessions(), timeout=30, what="the bot to disconnect"
        )


async def ask(standin: StandIn, query: str) -> float | None:
    """Seconds to the answer the user sees, or None when it came after Discord's 3 s."""
    handle = await standin.slash("search", {"query": query})
    try:
        delay = await handle.wait_answered(timeout=DEADLINE + 10)
    except TimeoutError:
        return None
    return delay if delay <= DEADLINE and not handle.rejected else None


async def measure(
    standin: StandIn, queries: list[str], warmup: list[str], pid: int
) -> dict[str, float]:
    for query in warmup:  # connection pools, page cache, discord.py's first-call costs
        await ask(standin, query)
    figures: dict[str, float] = {}
    single = [await ask(standin, query) for query in queries[:SINGLE]]
    answered = [d for d in single if d is not None]
    figures["single_p50_ms"] = statistics.median(answered) * 1000 if answered else float("nan")
    offset = SINGLE
    for size in BURSTS:
        batch = queries[offset : offset + size]
        offset += size
        cpu_before, main_before = cpu_ms(pid)
        own_before = sum(os.times()[:2])
        delays = await asyncio.gather(*(ask(standin, query) for query in batch))
        cpu_after, main_after = cpu_ms(pid)
        own_after = sum(os.times()[:2])
        answered = [d for d in delays if d is not None]
        figures[f"burst{size}_p50_ms"] = percentile(answered, 0.5) * 1000 if answered else 0
        figures[f"burst{size}_p95_ms"] = percentile(answered, 0.95) * 1000 if answered else 0
        figures[f"burst{size}_max_ms"] = max(answered) * 1000 if answered else 0
        figures[f"burst{size}_within_3s"] = len(answered)
        # The bot's CPU during the burst (10 ms ticks): all threads, and the event loop's.
        figures[f"burst{size}_bot_cpu"] = cpu_after - cpu_before
        figures[f"burst{size}_loop_cpu"] = main_after - main_before
        figures[f"burst{size}_standin_cpu"] = (own_after - own_before) * 1000  # and the clients
    return figures


async def run(args: argparse.Namespace) -> None:
    corpus = Path(args.corpus)
    needed = SINGLE + sum(BURSTS)
    queries = pick_queries(corpus, needed + 5)
    warmup, queries = queries[:5], queries[5:]
    if args.same:
        queries = [queries[0]] * needed
    if args.standin_work_ms:
        heavier_standin(args.standin_work_ms)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        db = Path(args.db) if args.db else work / "bench.db"
        ensure_store(db, corpus)
        if not args.cold:
            ensure_postings(db)
        per_run: dict[str, list[dict[str, float]]] = {"floor": [], "paperbot": []}
        async with running_standin(enforce_limits=True) as standin:
            guild = standin.guild.id
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "PAPERBOT_DISCORD_API": standin.url,
                "DISCORD_TOKEN": standin.token,
                "BENCH_GUILD_ID": str(guild),
            }
            config = work / "config.toml"
            config.write_text(
                f"[discord]\ncommand_guild_ids = [{guild}]\n"
                f"[database]\npath = {json.dumps(str(db))}\n",
                encoding="utf-8",
            )
            paperbot = ["-m", "bot", "--config", str(config), "-q", "run", "--sync"]
            if args.profile:  # the event loop's thread, to see what runs on it
                paperbot = ["-m", "cProfile", "-o", args.profile, *paperbot]
            bots = {"floor": ["-m", "bench.minimal_bot"], "paperbot": paperbot}
            for number in range(args.runs):
                for name, argv in bots.items():
                    if args.cold and name == "paperbot":
                        remove_postings(db)
                    async with BotProcess(standin, argv, env, ROOT) as bot:
                        assert bot.process is not None
                        figures = await measure(standin, queries, warmup, bot.process.pid)
                        figures["start_to_ready_s"] = bot.connect_seconds
                    per_run[name].append(figures)
                    print(f"# run {number + 1} {name}: {figures}", flush=True)
            bad = standin.unexpected_4xx(allow=[10062])
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1 and 5 min)")
    print(f"runs: {args.runs}")
    print(f"queries: {'one repeated' if args.same else 'all different'}")
    print(f"standin_work_ms: {args.standin_work_ms}")
    print(f"postings: {'removed before each paperbot run (--cold)' if args.cold else 'built'}")
    for key in per_run["floor"][0]:
        floor = statistics.median(r[key] for r in per_run["floor"])
        paperbot = statistics.median(r[key] for r in per_run["paperbot"])
        print(f"floor_{key}: {floor:.1f}")
        print(f"paperbot_{key}: {paperbot:.1f}")
        if key.endswith("_ms") and floor:
            pairs = zip(per_run["paperbot"], per_run["floor"], strict=True)
            ratios = [p[key] / f[key] for p, f in pairs]
            print(f"ratio_{key}: {statistics.median(ratios):.2f}")
    print(f"unexpected_4xx: {len(bad)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True, help="papers (JSON Lines, .gz)")
    parser.add_argument("--db", help="store to use (imported from --corpus if missing)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--same", action="store_true", help="one query for every interaction")
    parser.add_argument(
        "--standin-work-ms",
        type=float,
        default=0.0,
        help="CPU the stand-in spends on each interaction callback (emulates a heavier one)",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="remove the search postings before each paperbot run: its first start after an "
        "import (it builds them before it connects; the time to connect is printed)",
    )
    parser.add_argument("--profile", help="write a cProfile of paperbot's main thread here")
    args = parser.parse_args()
    started = time.monotonic()
    asyncio.run(run(args))
    print(f"bench_seconds: {time.monotonic() - started:.0f}")


if __name__ == "__main__":
    main()
