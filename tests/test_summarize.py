"""Non-LLM summary bullets and derived fields."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.digest.summarize import (
    bullets_from_text,
    fallback_bullets,
    split_sentences,
    with_derived_fields,
)
from bot.labels import LABELS
from bot.models import Paper, SummarySource

ABSTRACT = (
    "Scaling language models to handle longer input sequences typically necessitates large "
    "key-value (KV) caches, resulting in substantial memory overhead during inference. In this "
    "paper, we propose Tensor Product Attention (TPA), a novel attention mechanism that uses "
    "tensor decompositions to represent queries, keys, and values compactly. Based on TPA, we "
    "introduce the Tensor ProducT ATTenTion Transformer (T6), a new model architecture for "
    "sequence modeling. Through extensive empirical evaluation of language modeling tasks, we "
    "demonstrate that T6 exceeds the performance of standard Transformer baselines. Our code is "
    "available at https://github.com/tensorgi/T6."
)


def test_split_sentences_keeps_abbreviations_decimals_and_figures_together() -> None:
    text = (
        "We use e.g. CNNs and i.e. transformers. Smith et al. (2020) showed it. "
        "Accuracy rose to 3.5% on v2.1. See Fig. 2 and Eq. 3 for details. Then J. Smith left!"
    )
    assert split_sentences(text) == [
        "We use e.g. CNNs and i.e. transformers.",
        "Smith et al. (2020) showed it.",
        "Accuracy rose to 3.5% on v2.1.",
        "See Fig. 2 and Eq. 3 for details.",
        "Then J. Smith left!",
    ]


def test_split_sentences_handles_questions_quotes_and_hard_wraps() -> None:
    text = 'Does it work?\nYes. He said "it works." Then we\n  stopped.'
    assert split_sentences(text) == [
        "Does it work?",
        "Yes.",
        'He said "it works."',
        "Then we stopped.",
    ]


def test_split_sentences_of_empty_text() -> None:
    assert split_sentences("   \n ") == []


def test_bullets_from_text_limits_count_and_length() -> None:
    bullets = bullets_from_text(ABSTRACT, max_bullets=2, max_chars=80)
    assert len(bullets) == 2
    assert all(len(bullet) <= 80 for bullet in bullets)
    assert bullets[0].startswith("Scaling language models")
    assert bullets[0].endswith("…")


def test_bullets_from_text_skips_code_availability_sentences() -> None:
    bullets = bullets_from_text(ABSTRACT, max_bullets=10)
    assert len(bullets) == 4
    assert not any("available at" in bullet for bullet in bullets)


def test_bullets_from_text_keeps_availability_sentence_when_it_is_all_there_is() -> None:
    assert bullets_from_text("Code is available at https://x.org.") == (
        "Code is available at https://x.org.",
    )


def test_bullets_from_text_with_zero_bullets() -> None:
    assert bullets_from_text(ABSTRACT, max_bullets=0) == ()


def test_fallback_bullets_prefer_hf_summary() -> None:
    paper = Paper(
        "2501.06425",
        "TPA",
        abstract=ABSTRACT,
        bullets=("TPA shrinks the KV cache.",),
        bullets_source=SummarySource.HF,
    )
    assert fallback_bullets(paper) == ("TPA shrinks the KV cache.",)


def test_fallback_bullets_use_the_abstract_lead() -> None:
    bullets = fallback_bullets(Paper("2501.06425", "TPA", abstract=ABSTRACT))
    assert 3 <= len(bullets) <= 4
    assert bullets[0].startswith("Scaling language models")


def test_with_derived_fields_fills_bullets_and_tags_from_the_abstract() -> None:
    paper = with_derived_fields(
        Paper("2501.06425", "Tensor Product Attention", abstract=ABSTRACT, categories=("cs.CL",))
    )
    assert paper.bullets and paper.bullets_source is SummarySource.ABSTRACT
    assert "Natural Language Processing" in paper.tags
    assert paper.tags_source is SummarySource.ABSTRACT


def test_with_derived_fields_never_overwrites_existing_fields() -> None:
    original = Paper(
        "2501.06425",
        "TPA",
        abstract=ABSTRACT,
        bullets=("Written by a person.",),
        bullets_source=SummarySource.DIGEST,
        tags=("Text Generation",),
        tags_source=SummarySource.LLM,
    )
    assert with_derived_fields(original) == original


def test_with_derived_fields_leaves_an_empty_paper_alone() -> None:
    paper = Paper("2501.06425", "")
    assert with_derived_fields(paper) == paper


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(["e.g.", "et al.", "3.5", "Fig. 2", "We", "test", ".", "?", "\n"])
        | st.text(max_size=15),
        max_size=40,
    ).map(" ".join),
    st.integers(min_value=0, max_value=6),
    st.integers(min_value=5, max_value=200),
)
def test_bullets_from_text_respects_its_limits(text: str, count: int, chars: int) -> None:
    bullets = bullets_from_text(text, max_bullets=count, max_chars=chars)
    assert len(bullets) <= count
    assert all(0 < len(bullet) <= chars for bullet in bullets)
    assert all("\n" not in bullet for bullet in bullets)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=300), st.text(max_size=1000))
def test_derived_tags_are_vocabulary_labels(title: str, abstract: str) -> None:
    paper = with_derived_fields(Paper("2501.00001", title, abstract=abstract))
    assert set(paper.tags) <= set(LABELS)
