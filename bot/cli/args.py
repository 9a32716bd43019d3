"""Argument types shared by the subcommands' parsers."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta


def parse_day(text: str) -> date:
    """``YYYY-MM-DD``, ``today`` or ``yesterday`` (UTC)."""
    today = datetime.now(UTC).date()
    aliases = {"today": today, "yesterday": today - timedelta(days=1)}
    if text.lower() in aliases:
        return aliases[text.lower()]
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date as YYYY-MM-DD (or today/yesterday), got {text!r}"
        ) from None


def positive_int(text: str) -> int:
    """An integer of at least 1 (``--limit``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
