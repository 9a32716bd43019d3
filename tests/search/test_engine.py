from datetime import date

import pytest

from bot.errors import InputError
from bot.models import Entry, Listing, Paper, SummarySource
from bot.store.papers import upsert_entries


def make(
    arxiv_id,
    title,
    *,
    abstract="",
    authors=("Ann Lee",),
    tags=(),
    upvotes=None,
    published=None,
    bullets=(),
):
    return Entry(
        Paper(
            arxiv_id=arxiv_id,
            title=title,
            abstract=abstract,
            authors=authors,
            tags=tags,
            tags_source=SummarySource.ABSTRACT,
            upvotes=upvotes,
            published=published,
            bullets=bullets,
            bullets_source=SummarySource.ABSTRACT,
        ),
        Listing(published or date(2025, 1, 1), "hf", 1, upvotes),
    )


@pytest.fixture
async def corpus(db):
    await upsert_entries(
        db,
        [
            make(
                "2501.00001",
                "Tensor Product Attention Is All You Need",
                abstract="We reduce the KV cache.",
                authors=("Huizhuo Yuan", "Yifeng Liu"),
                tags=("Natural Language Processing",),
                upvotes=50,
                published=date(2025, 1, 10),
            ),
            make(
                "2501.00002",
                "A survey of attention mechanisms",
                abstract="Attention attention attention everywhere in transformers.",
                tags=("Natural Language Processing",),
                upvotes=5,
                published=date(2025, 1, 12),
            ),
            make(
                "2501.00003",
                "Video diffusion for long narratives",
                abstract="We generate long videos with attention to story.",
                tags=("Text-to-Video", "Computer Vision"),
                upvotes=20,
                published=date(2025, 1, 13),
            ),
            make(
                "2501.00004",
                "Robots that fold laundry",
                abstract="A robotics paper.",
                tags=("Robotics",),
                upvotes=1,
                published=date(2024, 12, 1),
            ),
        ],
    )
    return db


@pytest.fixture
def search(engine):
    return engine.search


async def ids(result):
    return [hit.paper.arxiv_id for hit in result.hits]


async def test_title_match_ranks_above_abstract_mentions(corpus, search):
    result = await search(corpus, "attention")
    found = await ids(result)
    assert found[0] in {"2501.00001", "2501.00002"}
    assert found[-1] == "2501.00003"  # only mentioned in the abstract
    assert all(hit.score > 0 for hit in result.hits)


async def test_exact_phrase_and_exclusion(corpus, search):
    assert await ids(await search(corpus, '"tensor product"')) == ["2501.00001"]
    assert "2501.00002" not in await ids(await search(corpus, "attention -survey"))


async def test_or_widens_the_match(corpus, search):
    assert set(await ids(await search(corpus, "laundry OR narratives"))) == {
        "2501.00003",
        "2501.00004",
    }


async def test_author_and_tag_filters(corpus, search):
    assert await ids(await search(corpus, "author:yuan")) == ["2501.00001"]
    assert await ids(await search(corpus, "attention tag:text-to-video")) == ["2501.00003"]
    assert await ids(await search(corpus, "", tags=("robotics",))) == ["2501.00004"]


async def test_unknown_tag_is_a_clear_error_with_suggestions(corpus, search):
    with pytest.raises(InputError, match=r"unknown tag 'robotic'.*Robotics"):
        await search(corpus, "tag:robotic")


async def test_date_range_and_sorts(corpus, search):
    found = await ids(await search(corpus, "attention", since=date(2025, 1, 11)))
    assert set(found) == {"2501.00002", "2501.00003"}
    assert (await ids(await search(corpus, "attention", sort="date")))[0] == "2501.00003"
    assert (await ids(await search(corpus, "attention", sort="upvotes")))[0] == "2501.00001"


async def test_paging_reports_whether_more_results_exist(corpus, search):
    first = await search(corpus, "attention", limit=2)
    second = await search(corpus, "attention", limit=2, offset=2)
    assert first.has_more and not second.has_more
    assert set(await ids(first)).isdisjoint(await ids(second))


async def test_queries_without_words_return_nothing_instead_of_failing(corpus, search):
    for text in ['"', "()", "-", "OR", "***", ""]:
        assert (await search(corpus, text)).hits == ()


async def test_exclusion_only_query_lists_the_rest(corpus, search):
    found = await ids(await search(corpus, "-attention"))
    assert found == ["2501.00004"]


async def test_stemming_matches_plural_forms(corpus, search):
    assert await ids(await search(corpus, "robot")) == ["2501.00004"]
