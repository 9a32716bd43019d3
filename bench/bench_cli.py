"""Command-line start-up benchmark: wall time of paperbot commands as a user runs them.

    python -m bench.bench_cli [--db FILE] [--runs N]

Each command runs N times as a subprocess under ``/usr/bin/time`` (wall clock, peak RSS);
the baseline is ``python -c pass`` with the same interpreter, measured in the same run.
``search`` runs against ``--db`` (default: a store the benchmark builds by importing the
90k-paper corpus, kept under ``bench/.data/cli.db``). Prints ``name: value`` lines (medians).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.bench_store import DEFAULT_CORPUS

DATA = Path(__file__).resolve().parent / ".data"
QUERIES = ["attention", "large language models", "robot manipulation", '"chain of thought"']
TARGETS = {"help": 0.3, "search": 0.6}


def timed(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KB) of one run."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        subprocess.run(
            ["/usr/bin/time", "-o", report.name, "-f", "%e %M", *command],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds, rss = report.read().split()[-2:]
    return float(seconds), int(rss)


def store(path: Path | None, paperbot: str) -> Path:
    if path is not None:
        return path
    target = DATA / "cli.db"
    if not target.exists():
        DATA.mkdir(exist_ok=True)
        partial = DATA / "cli.partial.db"
        subprocess.run(
            [paperbot, "-q", "--db", str(partial), "import", str(DEFAULT_CORPUS)], check=True
        )
        partial.rename(target)
        for suffix in ("-wal", "-shm"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
    return target


def measure(database: Path, runs: int) -> None:
    """Time ``--help``, ``--version`` and searches of ``database``, interleaved with the
    ``python -c pass`` baseline, ``runs`` times each; print the medians."""
    paperbot = str(Path(sys.executable).with_name("paperbot"))
    load = os.getloadavg()
    print(f"cli_load: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    commands = {
        "baseline_python_pass": [sys.executable, "-c", "pass"],
        "help": [paperbot, "--help"],
        "version": [paperbot, "--version"],
    }
    for number, query in enumerate(QUERIES):
        commands[f"search_{number}"] = [paperbot, "-q", "--db", str(database), "search", query]
    timings: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, int] = {}
    for _ in range(runs):  # interleaved, so that load changes hit every command alike
        for name, command in commands.items():
            seconds, peak = timed(command)
            timings[name].append(seconds)
            rss[name] = max(rss.get(name, 0), peak)
    baseline = statistics.median(timings["baseline_python_pass"])
    print(f"runs: {runs} per command (median wall seconds, /usr/bin/time)")
    print(f"baseline_python_pass_s: {baseline:.3f}")
    for name in ("help", "version"):
        value = statistics.median(timings[name])
        target = f" (target <= {TARGETS[name]})" if name in TARGETS else ""
        print(f"{name}_s: {value:.3f}{target}")
        print(f"{name}_minus_baseline_s: {value - baseline:.3f}")
    searches = [t for name, values in timings.items() if name.startswith("search_") for t in values]
    worst = max(statistics.median(timings[f"search_{n}"]) for n in range(len(QUERIES)))
    print(f"search_queries: {len(QUERIES)} on {database.name}")
    print(f"search_s: {statistics.median(searches):.3f} (target <= {TARGETS['search']})")
    print(f"search_slowest_query_median_s: {worst:.3f}")
    print(f"search_minus_baseline_s: {statistics.median(searches) - baseline:.3f}")
    print(f"search_peak_rss_mb: {max(rss[f'search_{n}'] for n in range(len(QUERIES))) / 1024:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="store to search (default: build one)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    database = store(args.db, str(Path(sys.executable).with_name("paperbot")))
    measure(database, args.runs)
    print(f"load_after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
