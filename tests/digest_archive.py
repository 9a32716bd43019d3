"""A generated many-day digest README, built from the real rows in tests/fixtures.

Like timlrx/daily-ai-papers' README: a title and prose, then one ``## Papers for DAY`` section
per day, newest first, with other headings and prose between some of them. Rows are copies of
the fixture rows (wrapped titles and links, prose, ``-`` and ``•`` summaries) with fresh ids.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

from bot.sources.markdown import HEADER, SEPARATOR, parse_markdown

FIXTURES = Path(__file__).parent / "fixtures"
ROW_SOURCES = [
    FIXTURES / "sources" / "digests" / "2025-03-11_5_rows.md",
    FIXTURES / "sources" / "digests" / "2024-10-15_4_rows.md",
    FIXTURES / "sources" / "digests" / "2024-09-27.md",
]
_ID_RE = re.compile(r"arxiv\.org/abs/\d{4}\.\d{4,5}")


def template_rows() -> list[str]:
    rows = []
    for path in ROW_SOURCES:
        rows.extend(e.listing.row for e in parse_markdown(path.read_text(encoding="utf-8")))
    return rows


def section(day: date, rows: list[str]) -> str:
    """One day's section in the seed's layout."""
    return (
        "\n".join(["", "", f"## Papers for {day.isoformat()}", "", HEADER, SEPARATOR, *rows]) + "\n"
    )


def make_archive(
    days: int = 263, rows_per_day: int = 10, first: date = date(2025, 1, 1)
) -> tuple[str, dict[date, str]]:
    """``(README text, {day: that day's section})``; every 25th day is header-only."""
    templates = template_rows()
    sections: dict[date, str] = {}
    serial = 0
    for n in range(days):
        day = first + timedelta(days=n)
        rows = []
        if n % 25 != 24:
            for _ in range(rows_per_day):
                serial += 1
                template = templates[serial % len(templates)]
                rows.append(_ID_RE.sub(f"arxiv.org/abs/2601.{serial:05d}", template, count=1))
        sections[day] = section(day, rows)
    parts = ["# Daily AI Papers\n", "\nSummaries of the day's papers | updated daily.\n"]
    for index, day in enumerate(sorted(sections, reverse=True)):
        if index % 40 == 39:
            parts.append("\n---\n\n### Older papers\n\nSee the archive folder for more.\n")
        parts.append(sections[day])
    return "".join(parts), sections
