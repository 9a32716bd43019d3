"""Argument parsing for every ``paperbot`` subcommand."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from bot.cli.args import parse_day, positive_int
from bot.cli.llm_commands import add_llm_commands
from bot.search.query import SORTS


def _date_range(parser: argparse.ArgumentParser, *, required: bool) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--date", type=parse_day, help="one day (YYYY-MM-DD, today, yesterday)")
    group.add_argument("--since", type=parse_day, help="first day of a range (inclusive)")
    parser.add_argument(
        "--until", type=parse_day, help="last day of a --since range (default: today)"
    )


class Handler:
    """A command's handler, imported when the command runs: ``--help`` or ``search`` do not
    pay for importing discord.py, openai or aiohttp (see ``python -X importtime``)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, args: argparse.Namespace, config: Any) -> Any:
        return getattr(importlib.import_module(self.module), self.name)(args, config)


def _handler(name: str) -> Handler:
    return Handler("bot.cli.commands", name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paperbot",
        description="Daily research papers for Discord: fetch, store, search and post digests.",
    )
    parser.add_argument("--version", action=_VersionAction, help="show the version and exit")
    _global_options(parser, None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the Discord bot (needs DISCORD_TOKEN)")
    p.add_argument("--sync", action="store_true", help="sync slash commands with Discord on start")
    p.set_defaults(handler=Handler("bot.cli.run", "run_command"))

    p = sub.add_parser("fetch", help="fetch a day's (or a range of days') papers into the store")
    _date_range(p, required=True)
    p.add_argument("--source", choices=("hf", "arxiv"), default="hf", help="default: hf")
    p.set_defaults(handler=_handler("fetch_command"))

    p = sub.add_parser(
        "import", help="import files: HF daily JSON, markdown digests, arXiv Atom, JSON Lines"
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="import the good files even if some cannot be read (default: all or nothing)",
    )
    p.set_defaults(handler=_handler("import_command"))

    p = sub.add_parser("export", help="export stored papers as a markdown digest or JSON Lines")
    _date_range(p, required=False)
    p.add_argument("--format", choices=("markdown", "jsonl"), default="markdown")
    p.add_argument("--output", "-o", help="write to this file instead of standard output")
    p.set_defaults(handler=_handler("export_command"))

    p = sub.add_parser("digest", help="print exactly what would be posted for a day")
    p.add_argument("--date", type=parse_day, required=True)
    p.add_argument("--format", choices=("markdown", "text", "discord-json"), default="text")
    p.add_argument("--feed", help="use this configured feed's filters (its name or channel id)")
    p.set_defaults(handler=_handler("digest_command"))

    p = sub.add_parser("search", help="full-text search over every stored paper")
    p.add_argument("query", nargs="*", help='words, "phrases", -exclusions, OR, tag:, author:')
    p.add_argument("--tag", action="append", default=[], help="only papers with this tag")
    p.add_argument("--author", action="append", default=[], help="only papers by this author")
    p.add_argument("--since", type=parse_day)
    p.add_argument("--until", type=parse_day)
    p.add_argument("--sort", choices=SORTS, default="relevance")
    p.add_argument("--limit", type=positive_int, default=10, help="results (default: 10)")
    p.add_argument("--json", action="store_true", help="one JSON object per hit")
    p.add_argument("--list-tags", action="store_true", help="list known tags with paper counts")
    p.set_defaults(handler=_handler("search_command"))

    add_llm_commands(sub)

    p = sub.add_parser("db", help="database maintenance")
    p.add_argument("action", choices=("migrate", "stats", "backup"))
    p.add_argument("target", nargs="?", help="backup: destination file")
    p.set_defaults(handler=_handler("db_command"))

    # The global options also work after the subcommand (`paperbot search x --db other.db`).
    for command in sub.choices.values():
        _global_options(command, argparse.SUPPRESS)
    return parser


def _global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    # After the subcommand the defaults are SUPPRESS: an option given before it is kept.
    parser.add_argument(
        "--config", default=default, help="config file (default: ./config.toml if present)"
    )
    parser.add_argument("--db", default=default, help="database file (overrides database.path)")
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default if default is not None else False,
        help="only warnings and errors",
    )


class _VersionAction(argparse.Action):
    """``--version``, reading the installed package's metadata only when asked (importing
    ``importlib.metadata`` would cost every other command about 40 ms of start-up)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help=str(kwargs.get("help")))

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        import importlib.metadata

        try:
            version = importlib.metadata.version("paperbot")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        print(f"paperbot {version}")
        parser.exit()
