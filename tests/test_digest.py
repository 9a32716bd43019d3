"""Selecting and ordering a day's papers for a channel."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.digest.select import matches_keywords, order_papers, select_for_channel, top_tags
from bot.models import DigestFilters, Paper


def paper(
    arxiv_id: str,
    *,
    upvotes: int | None = None,
    tags: tuple[str, ...] = ("Other",),
    title: str = "A paper",
    abstract: str = "",
    bullets: tuple[str, ...] = (),
    keywords: tuple[str, ...] = (),
) -> Paper:
    return Paper(
        arxiv_id,
        title,
        abstract=abstract,
        upvotes=upvotes,
        tags=tags,
        bullets=bullets,
        keywords=keywords,
    )


def ids(papers: list[Paper]) -> list[str]:
    return [p.arxiv_id for p in papers]


def test_orders_by_upvotes_then_listing_order() -> None:
    papers = [
        paper("2501.00001", upvotes=5),
        paper("2501.00002", upvotes=20),
        paper("2501.00003", upvotes=None),
        paper("2501.00004", upvotes=5),
    ]
    assert ids(select_for_channel(papers, DigestFilters())) == [
        "2501.00002",
        "2501.00001",
        "2501.00004",
        "2501.00003",
    ]


def test_ranks_break_ties_instead_of_input_order() -> None:
    papers = [paper("2501.00001", upvotes=1), paper("2501.00002", upvotes=1)]
    ranks = {"2501.00001": 2, "2501.00002": 1}
    assert ids(order_papers(papers, ranks)) == ["2501.00002", "2501.00001"]


def test_include_tags_case_insensitive_and_by_group() -> None:
    papers = [
        paper("2501.00001", tags=("Text-to-Image",)),
        paper("2501.00002", tags=("Text Generation", "Natural Language Processing")),
        paper("2501.00003", tags=("Robotics",)),
    ]
    assert ids(select_for_channel(papers, DigestFilters(include_tags=("text to image",)))) == [
        "2501.00001"
    ]
    assert ids(select_for_channel(papers, DigestFilters(include_tags=("computer vision",)))) == [
        "2501.00001"
    ]
    assert ids(select_for_channel(papers, DigestFilters(include_tags=("NLP", "robotics")))) == [
        "2501.00002",
        "2501.00003",
    ]


def test_exclude_tags_wins_over_include() -> None:
    papers = [
        paper("2501.00001", tags=("Text Generation", "Multimodal")),
        paper("2501.00002", tags=("Text Generation",)),
    ]
    filters = DigestFilters(include_tags=("Text Generation",), exclude_tags=("multimodal",))
    assert ids(select_for_channel(papers, filters)) == ["2501.00002"]


def test_tags_outside_the_vocabulary_still_match_by_name() -> None:
    papers = [paper("2501.00001", tags=("Protein Folding",))]
    filters = DigestFilters(include_tags=("protein  folding",))
    assert ids(select_for_channel(papers, filters)) == ["2501.00001"]


def test_untagged_papers_are_matched_on_derived_tags() -> None:
    untagged = Paper("2501.00001", "Video generation with diffusion", categories=("cs.CV",))
    filters = DigestFilters(include_tags=("Text-to-Video",))
    assert ids(select_for_channel([untagged], filters)) == ["2501.00001"]


def test_include_keywords_match_whole_words_anywhere() -> None:
    papers = [
        paper("2501.00001", title="Diffusion for Robots"),
        paper("2501.00002", abstract="We study large   language\nmodels."),
        paper("2501.00003", bullets=("Uses RAG.",)),
        paper("2501.00004", keywords=("ragged tensors",)),
    ]
    assert ids(select_for_channel(papers, DigestFilters(include_keywords=("diffusion",)))) == [
        "2501.00001"
    ]
    filters = DigestFilters(include_keywords=("Large Language Models",))
    assert ids(select_for_channel(papers, filters)) == ["2501.00002"]
    assert ids(select_for_channel(papers, DigestFilters(include_keywords=("rag",)))) == [
        "2501.00003"
    ]


def test_exclude_keywords() -> None:
    papers = [paper("2501.00001", title="A survey of LLMs"), paper("2501.00002", title="TPA")]
    filters = DigestFilters(exclude_keywords=("survey",))
    assert ids(select_for_channel(papers, filters)) == ["2501.00002"]


def test_keywords_with_punctuation() -> None:
    assert matches_keywords(paper("2501.00001", title="Fast C++ kernels"), ["c++"])
    assert not matches_keywords(paper("2501.00001", title="Fast C kernels"), ["c++"])
    assert not matches_keywords(paper("2501.00001", title="x"), ["  "])


def test_min_upvotes_counts_none_as_zero() -> None:
    papers = [paper("2501.00001", upvotes=None), paper("2501.00002", upvotes=3)]
    assert ids(select_for_channel(papers, DigestFilters(min_upvotes=1))) == ["2501.00002"]
    assert len(select_for_channel(papers, DigestFilters(min_upvotes=0))) == 2


def test_max_papers_keeps_the_best() -> None:
    papers = [paper(f"2501.0000{i}", upvotes=i) for i in range(1, 6)]
    assert ids(select_for_channel(papers, DigestFilters(max_papers=2))) == [
        "2501.00005",
        "2501.00004",
    ]
    assert select_for_channel(papers, DigestFilters(max_papers=0)) == []


def test_duplicates_are_kept_once() -> None:
    first = paper("2501.00001", upvotes=1)
    assert select_for_channel([first, first], DigestFilters()) == [first]


def test_top_tags_counts_each_paper_once() -> None:
    papers = [
        paper("2501.00001", tags=("Text Generation", "Natural Language Processing")),
        paper("2501.00002", tags=("Natural Language Processing", "Natural Language Processing")),
        paper("2501.00003", tags=("Robotics",)),
    ]
    assert top_tags(papers, n=2) == [("Natural Language Processing", 2), ("Text Generation", 1)]
    assert top_tags(papers, n=0) == []


_tags = st.sampled_from(["Text Generation", "Robotics", "Multimodal", "Audio", "Other"])
_papers = st.lists(
    st.builds(
        paper,
        st.integers(min_value=10000, max_value=99999).map(lambda n: f"2501.{n}"),
        upvotes=st.none() | st.integers(min_value=0, max_value=500),
        tags=st.lists(_tags, min_size=1, max_size=3).map(tuple),
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(_papers, st.integers(min_value=0, max_value=100), st.integers(min_value=-1, max_value=50))
def test_selection_is_an_ordered_filtered_subset(
    papers: list[Paper], min_upvotes: int, max_papers: int
) -> None:
    filters = DigestFilters(min_upvotes=min_upvotes, max_papers=max_papers)
    chosen = select_for_channel(papers, filters)
    assert len(chosen) <= max(max_papers, 0)
    assert len(set(ids(chosen))) == len(chosen)
    assert all((p.upvotes or 0) >= min_upvotes for p in chosen)
    votes = [p.upvotes or 0 for p in chosen]
    assert votes == sorted(votes, reverse=True)
