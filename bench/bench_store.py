"""Store benchmark: corpus import and search latency, each against a bare SQLite baseline.

    python -m bench.bench_store [--corpus FILE] [--limit N] [--rounds R] [--import-runs K]
                                [--cli-runs N] [--import-only]

Import, end to end as a user runs it: ``paperbot import CORPUS`` as a subprocess into a new
database (read + parse + derive summaries and tags + store + FTS5), timed wall-clock with its
peak RSS from ``/usr/bin/time``, against a bare build measured the same way in the same run:
a subprocess that reads the same file with the stdlib ``json``, inserts the rows with one
``executemany`` and fills FTS5 with one bulk ``INSERT ... SELECT`` (same schema, no
derivation). Rates are corpus lines per second; medians over ``--import-runs``.
Start-up, in the same run: ``paperbot --help``, ``--version`` and ``paperbot search QUERY`` on
the last imported store, ``--cli-runs`` times each against ``python -c pass``
(:func:`bench.bench_cli.measure`).
Store step alone: ``bot.store.papers.upsert_entries`` on already parsed and derived entries,
against the bare ``executemany`` + FTS5 build of the same rows (this covers only the store).
Search: ``SearchEngine.search`` (``bot.search.engine``: query language, top 10) against a bare
FTS5 bm25 top-10 query with the same MATCH expression on the same database.
Prints ``name: value`` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.models import Entry, Paper
from bot.search.engine import SearchEngine
from bot.search.query import parse_query
from bot.sources.ingest import prepare
from bot.sources.jsonl import iter_jsonl_file
from bot.store.connection import open_database
from bot.store.database import Database
from bot.store.papers import _row_values, upsert_entries

# ../shared/data next to the checkout (a git worktree one level deeper also finds it).
_CANDIDATES = [
    folder / "shared/data/corpus/papers_corpus.jsonl.gz"
    for folder in Path(__file__).resolve().parents[2:4]
]
DEFAULT_CORPUS = next((path for path in _CANDIDATES if path.exists()), _CANDIDATES[0])

QUERIES = [
    "attention",
    "large language models",
    "diffusion",
    "reinforcement learning from human feedback",
    '"chain of thought"',
    "mixture of experts",
    "retrieval augmented generation",
    "video generation",
    "speech recognition",
    "graph neural network",
    "robot manipulation",
    "kv cache compression",
    "vision language model hallucination",
    "protein",
    "federated learning privacy",
    "agent benchmark",
    "quantization -survey",
    "text-to-image OR text-to-video",
    "author:wang",
    "mamba state space",
    "medical image segmentation",
    "code generation",
    "multilingual translation",
    "reward model",
    "autonomous driving",
    "contrastive learning",
    "time series forecasting",
    "3d gaussian splatting",
    "theorem proving",
    "llm",
]

WORDS = [
    "model",
    "learning",
    "language",
    "neural",
    "network",
    "data",
    "training",
    "large",
    "vision",
    "attention",
    "graph",
    "diffusion",
    "agent",
    "reasoning",
    "benchmark",
    "robot",
    "speech",
    "video",
    "image",
    "text",
    "generation",
    "retrieval",
    "reinforcement",
    "policy",
    "transformer",
    "token",
    "memory",
    "efficient",
    "scaling",
    "evaluation",
    "dataset",
]


def generated_corpus(count: int, seed: int = 7) -> list[Entry]:
    """Synthetic papers for machines without the real corpus."""
    rng = random.Random(seed)
    entries = []
    for number in range(count):
        title = " ".join(rng.choices(WORDS, k=8)).capitalize()
        abstract = ". ".join(" ".join(rng.choices(WORDS, k=18)) for _ in range(6)) + "."
        paper = Paper(
            arxiv_id=f"25{number // 100000:02d}.{number % 100000:05d}",
            title=title,
            authors=tuple(f"Author {rng.randrange(5000)}" for _ in range(rng.randint(1, 8))),
            abstract=abstract,
            categories=("cs.LG",),
        )
        entries.append(Entry(paper, None))
    return entries


def load_corpus(path: Path, limit: int | None) -> tuple[list[Entry], str]:
    if not path.exists():
        return generated_corpus(limit or 90_340), "generated"
    entries = []
    for entry in iter_jsonl_file(path):
        entries.append(entry)
        if limit and len(entries) >= limit:
            break
    return entries, str(path.name)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def ingest_project(path: Path, entries: list[Entry]) -> float:
    async with open_database(path) as conn:
        db = Database(conn, path)
        started = time.perf_counter()
        await upsert_entries(db, entries)
        return time.perf_counter() - started


def ingest_bare(path: Path, entries: list[Entry]) -> float:
    """Same schema, rows inserted with one executemany, then one bulk FTS5 build."""
    asyncio.run(_create_schema(path))
    rows = [_row_values(entry.paper, None) for entry in entries]
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    with conn:
        conn.executemany(
            f"INSERT OR IGNORE INTO papers ({_COLUMNS}) VALUES ({','.join('?' * 22)})", rows
        )
        conn.execute(
            "INSERT INTO papers_fts (rowid, title, authors_text, summary_text, abstract, tags_text)"
            " SELECT id, title, authors_text, summary_text, abstract, tags_text FROM papers"
        )
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


_COLUMNS = (
    "arxiv_id, version, title, authors, abstract, published, sort_date, categories, bullets,"
    " bullets_source, tags, tags_source, keywords, github_urls, hf_urls, project_url,"
    " comment, upvotes, github_stars, authors_text, summary_text, tags_text"
)


def bare_import(corpus: Path, database: Path) -> int:
    """The baseline: stdlib json, one executemany, one bulk FTS5 build. Returns the rows."""
    asyncio.run(_create_schema(database))
    dump = json.dumps
    rows = []
    opener = gzip.open if corpus.suffix == ".gz" else open
    with opener(corpus, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if ":" in record["id"]:  # s2:/openalex: ids, which paperbot skips too
                continue
            hf = record.get("hf") or {}
            authors = record.get("authors") or []
            rows.append((
                record["id"], None, record["title"], dump(authors), record.get("abstract") or "",
                record.get("date"), record.get("date"), dump(record.get("categories") or []),
                "[]", 0, "[]", 0, dump(hf.get("ai_keywords") or []), "[]", "[]", None,
                record.get("comment"), hf.get("upvotes"), None, ", ".join(authors), "", "",
            ))  # fmt: skip
    conn = sqlite3.connect(database)
    with conn:
        conn.executemany(
            f"INSERT OR IGNORE INTO papers ({_COLUMNS}) VALUES ({','.join('?' * 22)})", rows
        )
        conn.execute(
            "INSERT INTO papers_fts (rowid, title, authors_text, summary_text, abstract, tags_text)"
            " SELECT id, title, authors_text, summary_text, abstract, tags_text FROM papers"
        )
    conn.close()
    return len(rows)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc; [pid] where that is not available)."""
    pids, index = [pid], 0
    while index < len(pids):
        try:
            children = Path(f"/proc/{pids[index]}/task/{pids[index]}/children").read_text()
        except OSError:
            children = ""
        pids.extend(int(child) for child in children.split())
        index += 1
    return pids


def _rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# The checkout this benchmark belongs to: its code is what the subprocesses (and their import
# workers) run, even where the installed package is another checkout's (an editable install).
CHECKOUT = Path(__file__).resolve().parents[1]


def _checkout_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(CHECKOUT), path]))}


def timed(command: list[str]) -> tuple[float, int, int]:
    """Wall seconds and peak RSS (KB) of a command, from /usr/bin/time, and the peak of the
    sum of RSS over its process tree (sampled every 50 ms; its worker processes count too)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        process = subprocess.Popen(
            ["/usr/bin/time", "-o", report.name, "-f", "%e %M", *command],
            stdout=subprocess.DEVNULL,
            env=_checkout_env(),
        )
        tree_peak = 0
        while process.poll() is None:
            tree_peak = max(tree_peak, sum(_rss_kb(pid) for pid in _tree(process.pid)[1:]))
            time.sleep(0.05)
        if process.returncode:
            raise subprocess.CalledProcessError(process.returncode, command)
        seconds, rss = report.read().split()[-2:]
    return float(seconds), int(rss), tree_peak


def import_end_to_end(corpus: Path, runs: int, cli_runs: int = 0) -> None:
    """``paperbot import`` vs the bare build, both as subprocesses, alternating, K runs; then,
    in the same run, the command line's start-up and searches of the last imported store."""
    lines = count_lines(corpus)
    paperbot = str(Path(sys.executable).with_name("paperbot"))
    results: dict[str, list[tuple[float, int, int]]] = {"project": [], "bare": []}
    with tempfile.TemporaryDirectory() as folder:
        for run in range(runs):
            for name in ("bare", "project"):
                database = Path(folder) / f"{name}{run}.db"
                if name == "project":
                    command = [paperbot, "-q", "--db", str(database), "import", str(corpus)]
                else:
                    command = [sys.executable, "-m", "bench.bench_store", "--bare-import",
                               str(corpus), str(database)]  # fmt: skip
                results[name].append(timed(command))
                if name == "project" and run == runs - 1 and cli_runs > 0:
                    continue  # kept for the command-line figures
                for leftover in Path(folder).glob(f"{name}{run}.db*"):
                    leftover.unlink()
        print(f"import_code: {CHECKOUT}")
        print(f"import_corpus_lines: {lines}")
        medians = {}
        for name in ("project", "bare"):
            seconds = statistics.median(s for s, _, _ in results[name])
            medians[name] = seconds
            rss = max(r for _, r, _ in results[name]) / 1024
            tree = max(t for _, _, t in results[name]) / 1024
            label = "paperbot_import" if name == "project" else "bare_build"
            runs_text = ", ".join(f"{s:.2f}" for s, _, _ in results[name])
            print(f"{label}_seconds: {seconds:.2f} (median of {runs}: {runs_text})")
            print(f"{label}_lines_per_s: {lines / seconds:.0f}")
            print(f"{label}_peak_rss_mb: {rss:.0f} (largest process)")
            target = " (target <= 300)" if name == "project" else ""
            print(f"{label}_peak_rss_all_processes_mb: {tree:.0f}{target}")
        ratio = medians["bare"] / medians["project"]
        pairs = ", ".join(
            f"{bare[0] / project[0]:.2f}"
            for bare, project in zip(results["bare"], results["project"], strict=True)
        )
        print(f"import_ratio_paperbot_to_bare: {ratio:.2f} (target >= 0.70; run by run: {pairs})")
        if cli_runs > 0:
            from bench.bench_cli import measure

            measure(Path(folder) / f"project{runs - 1}.db", cli_runs)


def count_lines(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        return sum(1 for _ in handle)


async def _create_schema(path: Path) -> None:
    async with open_database(path):
        pass


async def search_latencies(path: Path, rounds: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"project": [], "bare": []}
    with SearchEngine() as engine:  # as the bot's
        async with open_database(path) as conn:
            db = Database(conn, path)
            search = engine.search
            expressions = [parse_query(text).to_fts() for text in QUERIES]
            for text in QUERIES[:5]:  # warm the page cache for both paths alike
                await search(db, text)
            for _ in range(rounds):
                for text, expression in zip(QUERIES, expressions, strict=True):
                    started = time.perf_counter()
                    await search(db, text, limit=10)
                    timings["project"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    async with conn.execute(
                        "SELECT rowid, bm25(papers_fts, 10.0, 4.0, 3.0, 1.0, 4.0) AS score "
                        "FROM papers_fts WHERE papers_fts MATCH ? ORDER BY score LIMIT 10",
                        (expression,),
                    ) as cursor:
                        await cursor.fetchall()
                    timings["bare"].append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--limit", type=int, default=None, help="use the first N papers")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--import-runs", type=int, default=3, help="end-to-end import runs")
    parser.add_argument("--import-only", action="store_true", help="only the end-to-end import")
    parser.add_argument(
        "--cli-runs", type=int, default=7, help="start-up runs on the imported store (0: none)"
    )
    parser.add_argument("--bare-import", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_import:
        bare_import(*args.bare_import)
        return
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    if args.corpus.exists() and args.import_runs > 0:
        import_end_to_end(args.corpus, args.import_runs, args.cli_runs)
        print(f"load_after_import: {os.getloadavg()[0]:.2f}")
    if args.import_only:
        return

    started = time.perf_counter()
    entries, source = load_corpus(args.corpus, args.limit)
    parse_seconds = time.perf_counter() - started
    print(f"corpus: {source}")
    print(f"papers: {len(entries)}")
    print(f"parse_papers_per_s: {len(entries) / parse_seconds:.0f}")

    sample = entries[:2000]
    started = time.perf_counter()
    prepare(sample)
    derive_seconds = time.perf_counter() - started
    print(f"derive_summaries_tags_papers_per_s: {len(sample) / derive_seconds:.0f}")

    with tempfile.TemporaryDirectory() as folder:
        project_db = Path(folder) / "project.db"
        bare_db = Path(folder) / "bare.db"
        project_seconds = asyncio.run(ingest_project(project_db, entries))
        bare_seconds = ingest_bare(bare_db, entries)
        project_rate = len(entries) / project_seconds
        bare_rate = len(entries) / bare_seconds
        print(f"store_step_upsert_papers_per_s: {project_rate:.0f}")
        print(f"store_step_bare_papers_per_s: {bare_rate:.0f}")
        print(f"store_step_ratio_upsert_to_bare: {project_rate / bare_rate:.2f}")

        timings = asyncio.run(search_latencies(project_db, args.rounds))
        for name in ("project", "bare"):
            values = timings[name]
            print(f"search_{name}_p50_ms: {1000 * statistics.median(values):.2f}")
            print(f"search_{name}_p95_ms: {1000 * percentile(values, 0.95):.2f}")
        for label, fraction in (("p50", 0.5), ("p95", 0.95)):
            ratio = percentile(timings["project"], fraction) / percentile(timings["bare"], fraction)
            print(f"search_ratio_{label}_project_to_bare: {ratio:.2f} (target <= 1.30)")
        print(f"search_queries: {len(QUERIES)} x {args.rounds} rounds")
    print(f"load_after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
