"""The ``paperbot`` command line: argument parsing, error reporting and exit codes.

Exit codes: 0 success, 2 bad usage or input, 1 failure. Errors are printed as one line.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from bot import search_index
from bot.cli.parser import build_parser
from bot.config import load_config
from bot.errors import PaperbotError

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # `paperbot search llm -survey`: a leading '-' word is an exclusion, not an option.
        if args.command == "search" and not any(word.startswith("--") for word in extra):
            args.query = [*args.query, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command != "run":
        # One-shot commands never start the background build of the large-store search index.
        search_index.AUTO_BUILD = False
    try:
        config = load_config(args.config)
        if args.db:
            config.database.path = args.db
        configure_logging("WARNING" if args.quiet else config.logging.level)
        return int(asyncio.run(args.handler(args, config)) or 0)
    except PaperbotError as exc:
        print(f"paperbot: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("paperbot: interrupted", file=sys.stderr)
        return 130
