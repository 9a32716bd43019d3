"""Importing files into the store and exporting digest days exactly as they were written."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from bot.errors import InputError
from bot.models import Entry, Listing, Paper, SummarySource
from bot.sources.archive import export_markdown, import_files
from bot.sources.markdown import HEADER, SEPARATOR
from bot.store.connection import migration_scripts
from bot.store.database import Database, connect
from bot.store.papers import get_paper, upsert_entries
from tests.conftest import FIXTURES
from tests.digest_archive import make_archive

SEED = FIXTURES / "seed_2025-01-14.md"
DIGESTS = FIXTURES / "sources" / "digests"
REAL_DAYS = {
    date(2024, 9, 27): DIGESTS / "2024-09-27.md",
    date(2024, 10, 15): DIGESTS / "2024-10-15_4_rows.md",
    date(2025, 3, 11): DIGESTS / "2025-03-11_5_rows.md",
    date(2025, 9, 26): DIGESTS / "2025-09-26.md",
}


async def _export(db: Database, day: date | None = None) -> str:
    return "".join([section async for section in export_markdown(db, day, day)])


async def test_every_real_day_and_the_seed_export_byte_for_byte_from_the_store(db):
    names = [str(path) for path in REAL_DAYS.values()] + [str(SEED)]
    results = await import_files(db, names)
    assert [item.error for item in results] == [None] * len(names)
    assert [item.records for item in results] == [8, 4, 5, 0, 10]
    for day, path in REAL_DAYS.items():
        assert await _export(db, day) == path.read_text(encoding="utf-8"), day
    # the seed's one documented normalisation: the mojibake is repaired
    seed = SEED.read_text(encoding="utf-8")
    assert await _export(db, date(2025, 1, 14)) == seed.replace("TransformerÂ²", "Transformer²")
    # everything at once: the days in date order, a header-only day included
    everything = await _export(db)
    assert everything.count("## Papers for ") == 5
    assert REAL_DAYS[date(2025, 9, 26)].read_text(encoding="utf-8") in everything


async def test_a_later_llm_summary_and_new_links_are_exported_in_the_seed_style(db):
    await import_files(db, [str(DIGESTS / "2025-03-11_5_rows.md")])
    first = await get_paper(db, "2503.03601")
    assert first is not None
    enriched = Paper(
        first.arxiv_id,
        first.title,
        bullets=("An LLM bullet.",),
        bullets_source=SummarySource.LLM,
        github_urls=("https://github.com/org/new",),
    )
    await upsert_entries(db, [Entry(enriched)])
    exported = await _export(db, date(2025, 3, 11))
    row = exported.split("\n| [")[1]
    assert "| - An LLM bullet. |" in row
    assert "| [Link](https://github.com/org/new) |" in row
    # the wrapped title cell and the wrapped HF link cell still read as written
    assert row.startswith("Feature-Level Insights into Artificial Text Detection with Sparse\n")
    assert "| [Link](https://mgtsaevis.github.io/\nmgt-sae-visualization/) |" in row
    # the other four rows are untouched
    original = (DIGESTS / "2025-03-11_5_rows.md").read_text(encoding="utf-8")
    assert exported.split("\n| [")[2:] == original.split("\n| [")[2:]


async def test_a_day_also_listed_by_another_source_keeps_the_digest_rows_first(db):
    await import_files(db, [str(DIGESTS / "2024-10-15_4_rows.md")])
    day = date(2024, 10, 15)
    extra = Paper("2410.99999", "Only on Hugging Face", bullets=("One.",))
    listed = Paper("2410.10139", "MMIE")  # also in the digest, now with many HF upvotes
    await upsert_entries(
        db,
        [
            Entry(extra, Listing(day, "hf", rank=1, upvotes=500)),
            Entry(listed, Listing(day, "hf", rank=2, upvotes=400)),
        ],
    )
    exported = await _export(db, day)
    original = (DIGESTS / "2024-10-15_4_rows.md").read_text(encoding="utf-8")
    assert exported.startswith(original)
    assert exported[len(original) :] == (
        "| [Only on Hugging Face](https://arxiv.org/abs/2410.99999) | N/A | - One. | [] "
        "| N/A | N/A |\n"
    )


async def test_import_is_all_or_nothing_unless_keep_going(db, tmp_path: Path):
    bad = tmp_path / "2025-03-12.md"
    bad.write_text(
        f"## Papers for 2025-03-12\n\n{HEADER}\n{SEPARATOR}\n"
        "| [T](https://arxiv.org/abs/2503.00001) | A | - b |\n",
        encoding="utf-8",
    )
    names = [str(SEED), str(bad)]
    with pytest.raises(
        InputError,
        match=r"2025-03-12\.md: line 5: .*; nothing was imported "
        r"\(--keep-going imports the other 1\)$",
    ):
        await import_files(db, names)
    assert await get_paper(db, "2501.07301") is None
    results = await import_files(db, names, keep_going=True)
    assert [(item.name, item.records) for item in results] == [(str(SEED), 10), (str(bad), 0)]
    assert results[0].error is None and results[1].error.startswith("line 5: expected 6 cells")
    assert await get_paper(db, "2501.07301") is not None
    assert "2025-03-12" not in await _export(db)


async def test_a_generated_263_day_readme_with_wrapped_rows_imports_completely(db, tmp_path):
    text, sections = make_archive()
    readme = tmp_path / "README.md"
    readme.write_text(text, encoding="utf-8")
    [result] = await import_files(db, [str(readme)])
    rows = sum(section.count("\n| [") for section in sections.values())
    assert result.error is None and result.records == rows == result.new
    assert len(result.days) == len(sections) == 263
    listings = await db.fetchone("SELECT count(*) FROM listings WHERE source = 'digest'")
    assert listings[0] == rows
    for day in (min(sections), date(2025, 3, 10), max(sections)):
        assert await _export(db, day) == sections[day]
    assert await _export(db) == "".join(sections[day] for day in sorted(sections))


async def test_migration_006_keeps_an_existing_store_and_exports_it_in_the_seed_style(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for number, _name, sql in migration_scripts():
        if number <= 5:
            conn.executescript(sql)
    conn.execute("PRAGMA user_version = 5")
    conn.execute(
        "INSERT INTO papers (arxiv_id, title, bullets) VALUES ('2501.00001', 'Old', '[\"B.\"]')"
    )
    conn.execute(
        "INSERT INTO listings (paper_id, day, source, rank) VALUES (1, '2025-01-14', 'digest', 1)"
    )
    conn.commit()
    conn.close()
    async with connect(path) as db:
        assert (await db.fetchone("PRAGMA user_version"))[0] == migration_scripts()[-1][0]
        assert await _export(db) == (
            "\n\n## Papers for 2025-01-14\n\n"
            f"{HEADER}\n{SEPARATOR}\n"
            "| [Old](https://arxiv.org/abs/2501.00001) | N/A | - B. | [] | N/A | N/A |\n"
        )
