from datetime import date

from bot.models import Entry, Listing, Paper, SummarySource
from bot.sources.ingest import ingest_stream
from bot.store.connection import current_version, migration_scripts
from bot.store.papers import (
    get_paper,
    iter_all_entries,
    papers_for_day,
    store_stats,
    tag_counts,
    upsert_entries,
)

DAY = date(2025, 1, 14)


def paper(arxiv_id: str = "2501.06425", **fields) -> Paper:
    defaults = {"title": "Tensor Product Attention Is All You Need", "authors": ("A. Author",)}
    defaults.update(fields)
    return Paper(arxiv_id=arxiv_id, **defaults)


async def test_migrations_bring_a_new_database_to_the_latest_version(db):
    assert await current_version(db.conn) == migration_scripts()[-1][0]
    mode = await db.fetchone("PRAGMA journal_mode")
    assert mode[0] == "wal"
    fk = await db.fetchone("PRAGMA foreign_keys")
    assert fk[0] == 1


async def test_upsert_inserts_then_reads_back_every_field(db):
    original = paper(
        abstract="We propose TPA.",
        version=2,
        published=date(2025, 1, 11),
        categories=("cs.CL", "cs.LG"),
        bullets=("One.", "Two."),
        bullets_source=SummarySource.DIGEST,
        tags=("Natural Language Processing",),
        tags_source=SummarySource.DIGEST,
        keywords=("attention",),
        github_urls=("https://github.com/tensorgi/T6",),
        hf_urls=("https://huggingface.co/x/y",),
        project_url="https://example.org",
        comment="10 pages",
        upvotes=42,
        github_stars=7,
    )
    result = await upsert_entries(db, [Entry(original, Listing(DAY, "hf", 1, 42))])
    assert (result.new, result.updated, result.listings) == (1, 0, 1)
    assert await get_paper(db, "2501.06425") == original


async def test_reingest_fills_missing_fields_and_never_erases_richer_ones(db):
    rich = paper(
        abstract="A long abstract about attention.",
        bullets=("LLM bullet.",),
        bullets_source=SummarySource.DIGEST,
        github_urls=("https://github.com/a/b",),
    )
    await upsert_entries(db, [Entry(rich)])
    poorer = paper(
        abstract="",
        bullets=("from abstract",),
        bullets_source=SummarySource.ABSTRACT,
        upvotes=10,
        project_url="https://p.org",
    )
    result = await upsert_entries(db, [Entry(poorer)])
    stored = await get_paper(db, "2501.06425")
    assert result.updated == 1
    assert stored.abstract == "A long abstract about attention."
    assert stored.bullets == ("LLM bullet.",)
    assert stored.github_urls == ("https://github.com/a/b",)
    assert stored.upvotes == 10
    assert stored.project_url == "https://p.org"


async def test_newer_version_updates_title_and_abstract(db):
    await upsert_entries(db, [Entry(paper(version=1, title="Old title", abstract="old"))])
    await upsert_entries(db, [Entry(paper(version=3, title="New title", abstract="new"))])
    await upsert_entries(db, [Entry(paper(version=2, title="Middle title", abstract="mid"))])
    stored = await get_paper(db, "2501.06425")
    assert (stored.version, stored.title, stored.abstract) == (3, "New title", "new")


async def test_update_keeps_the_full_text_index_in_step(db):
    await upsert_entries(db, [Entry(paper(version=1, title="Quantum widgets"))])
    await upsert_entries(db, [Entry(paper(version=2, title="Photonic gadgets"))])
    old = await db.fetchall("SELECT rowid FROM papers_fts WHERE papers_fts MATCH 'widgets'")
    new = await db.fetchall("SELECT rowid FROM papers_fts WHERE papers_fts MATCH 'gadgets'")
    assert old == [] and len(new) == 1
    check = await db.fetchall("INSERT INTO papers_fts(papers_fts) VALUES('integrity-check')")
    assert check == []


async def test_identical_reingest_changes_nothing(db):
    entry = Entry(paper(), Listing(DAY, "hf", 1, 5))
    await upsert_entries(db, [entry])
    result = await upsert_entries(db, [entry])
    assert (result.new, result.updated, result.unchanged) == (0, 0, 1)


async def test_listings_record_day_source_rank_and_upvotes(db):
    entries = [
        Entry(paper("2501.00001", title="Low"), Listing(DAY, "hf", 2, 3)),
        Entry(paper("2501.00002", title="High"), Listing(DAY, "hf", 1, 30)),
        Entry(paper("2501.00003", title="Arxiv only"), Listing(DAY, "arxiv", 1)),
        Entry(paper("2501.00002", title="High"), Listing(DAY, "arxiv", 2)),
    ]
    await upsert_entries(db, entries)
    listed = await papers_for_day(db, DAY)
    assert [item.paper.title for item in listed] == ["High", "Low", "Arxiv only"]
    assert listed[0].listing == Listing(DAY, "hf", 1, 30)
    only_arxiv = await papers_for_day(db, DAY, ["arxiv"])
    assert [item.paper.title for item in only_arxiv] == ["Arxiv only", "High"]


async def test_a_failing_batch_leaves_the_store_exactly_as_it_was(db):
    await upsert_entries(db, [Entry(paper("2501.00001", title="Kept"))])
    before = await db.fetchall("SELECT * FROM papers")
    bad = Entry(paper("2501.00002", title=None))  # NOT NULL title violates the schema
    try:
        await upsert_entries(db, [Entry(paper("2501.00003", title="New")), bad])
    except Exception:
        pass
    else:
        raise AssertionError("the bad batch should have failed")
    assert [tuple(r) for r in await db.fetchall("SELECT * FROM papers")] == [
        tuple(r) for r in before
    ]
    assert (await db.fetchone("SELECT count(*) FROM papers_fts"))[0] == 1


async def test_tags_are_counted_and_follow_updates(db):
    await upsert_entries(
        db,
        [
            Entry(
                paper("2501.00001", tags=("Computer Vision",), tags_source=SummarySource.ABSTRACT)
            ),
            Entry(
                paper(
                    "2501.00002",
                    tags=("Computer Vision", "Robotics"),
                    tags_source=SummarySource.ABSTRACT,
                )
            ),
        ],
    )
    assert await tag_counts(db) == [("Computer Vision", 2), ("Robotics", 1)]
    await upsert_entries(
        db,
        [
            Entry(paper("2501.00002", tags=("Robotics",), tags_source=SummarySource.LLM)),
        ],
    )
    assert await tag_counts(db) == [("Computer Vision", 1), ("Robotics", 1)]


async def test_iter_all_entries_returns_papers_with_all_their_listings(db):
    await upsert_entries(
        db,
        [
            Entry(paper("2501.00001"), Listing(DAY, "hf", 1, 3)),
            Entry(paper("2501.00001"), Listing(date(2025, 1, 15), "digest", 4)),
            Entry(paper("2501.00002"), Listing(date(2025, 1, 15), "hf", 1)),
        ],
    )
    everything = [(p.arxiv_id, ls) async for p, ls in iter_all_entries(db)]
    assert everything[0] == (
        "2501.00001",
        [Listing(DAY, "hf", 1, 3), Listing(date(2025, 1, 15), "digest", 4)],
    )
    only_14th = [p.arxiv_id async for p, _ in iter_all_entries(db, since=DAY, until=DAY)]
    assert only_14th == ["2501.00001"]
    stats = await store_stats(db)
    assert stats["papers"] == 2 and stats["listings"] == 3 and stats["listed_days"] == 2


async def test_a_streamed_import_merges_a_paper_seen_in_two_batches_and_counts_it_once(db):
    entries = [
        Entry(paper("2501.00001", title="First"), Listing(DAY, "hf", rank=1)),
        Entry(paper("2501.00002", title="Second")),
        Entry(paper("2501.00003", title="Third")),
        Entry(paper("2501.00001", title="First", comment="10 pages"), Listing(DAY, "digest")),
    ]
    async with db.transaction() as conn:
        result = await ingest_stream(conn, entries, batch_size=2)
    assert (result.new, result.updated, result.listings) == (3, 0, 2)
    stored = await get_paper(db, "2501.00001")
    assert stored is not None and stored.comment == "10 pages"
    assert stored.tags, "derived on the way in"
    stats = await store_stats(db)
    assert stats["papers"] == 3 and stats["listings"] == 2
    hits = await db.fetchall("SELECT rowid FROM papers_fts WHERE papers_fts MATCH 'first'")
    assert len(hits) == 1, "indexed once, not once per batch"
