"""The ``paperbot`` command line: argument parsing, error reporting and exit codes.

Exit codes: 0 success, 2 bad usage or input, 1 failure. Errors are printed as one line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.cli.parser import build_parser
from bot.config import load_config
from bot.errors import InputError, PaperbotError

log = logging.getLogger("bot")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # discord.py and aiohttp are chatty at DEBUG; keep them at INFO unless asked.
    for name in ("discord", "aiohttp", "apscheduler", "httpx", "httpx2", "openai"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().level))
    # The bot never joins voice: "PyNaCl is not installed, voice will NOT be supported" is noise.
    logging.getLogger("discord.client").addFilter(
        lambda record: "voice will NOT be supported" not in record.getMessage()
    )


# Commands that only read the store: they refuse a database file that does not exist instead
# of creating an empty one (and its folder) and reporting 0 papers.
READ_ONLY = frozenset({"export", "digest", "search", "ask", "enrich", "embed"})
READ_ONLY_DB_ACTIONS = frozenset({"stats", "backup"})


def _reads_only(args: argparse.Namespace) -> bool:
    if args.command == "db":
        return args.action in READ_ONLY_DB_ACTIONS
    return args.command in READ_ONLY


def _check_database(args: argparse.Namespace, path: str | Path) -> None:
    if _reads_only(args) and str(path) != ":memory:" and not Path(path).exists():
        raise InputError(
            f"no database at {path}: import or fetch papers first, or point --db at one"
        )


def _quiet_stdout() -> None:
    """The reader went away (``paperbot search x | head -1``): drop whatever is still buffered."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # `paperbot search llm -survey`: a leading '-' word is an exclusion, not an option.
        if args.command == "search" and not any(word.startswith("--") for word in extra):
            args.query = [*args.query, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    words = " ".join(getattr(args, "query", [])).strip()
    if args.command == "search" and not (args.list_tags or words or args.tag or args.author):
        parser.error("search needs words to look for (or --tag / --author / --list-tags)")
    import asyncio  # here, not at the top: `paperbot --help` has exited by now

    try:
        config = load_config(args.config)
        if args.db:
            config.database.path = args.db
        _check_database(args, config.database.path)
        configure_logging("WARNING" if args.quiet else config.logging.level)
        code = int(asyncio.run(args.handler(args, config)) or 0)
        sys.stdout.flush()  # here, so that a closed pipe is caught below and not at exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except PaperbotError as exc:
        print(f"paperbot: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("paperbot: interrupted", file=sys.stderr)
        return 130
