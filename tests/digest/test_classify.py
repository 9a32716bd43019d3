"""The label vocabulary and the keyword/category classifier."""

from __future__ import annotations

import gzip
import json
import random
import re
import string
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.digest.classify import (
    _MATCHERS,
    _VOCABULARY,
    CATEGORY_LABELS,
    GROUPS,
    KEYWORD_RULES,
    MAX_LABELS,
    _candidates,
    _category_scores,
    _evidence,
    _expansions,
    _fold,
    _fold_words,
    _lead_width,
    _literal_runs,
    _Matcher,
    _openers,
    _Text,
    _whole_words,
    classify,
)
from bot.labels import ALIASES, LABELS, TAXONOMY, group_of, label_family, normalize_label
from tests.conftest import FIXTURES

# 300 corpus papers (every 300th) with the tags the classifier gave them before it was indexed.
CLASSIFIED = FIXTURES / "sources" / "corpus" / "classified_300.jsonl.gz"

# Every label used in the seed digest and the 2024-09-27 digest (timlrx/daily-ai-papers).
SEED_LABELS = {
    "Natural Language Processing", "Question Answering", "Text Generation",
    "Reinforcement Learning", "Multimodal", "Visual Question Answering", "Text-to-Video", "Audio",
    "Text-to-Speech",
    "Automatic Speech Recognition", "Time Series Forecasting", "Image-to-Text", "Text-to-Image",
    "Zero-Shot Classification", "Image Feature Extraction", "Image-Text-to-Text", "Text-to-3D",
    "Text2Text Generation", "Graph Machine Learning",
}  # fmt: skip


def test_vocabulary_has_53_unique_labels() -> None:
    assert len(LABELS) == 53
    assert len(set(LABELS)) == 53


def test_vocabulary_contains_every_label_seen_in_real_digests() -> None:
    assert set(LABELS) >= SEED_LABELS


def test_vocabulary_follows_the_taxonomy_order_group_first() -> None:
    assert LABELS[:2] == ("Multimodal", "Image-Text-to-Text")
    assert LABELS[-2:] == ("Other", "Graph Machine Learning")
    for group, tasks in TAXONOMY.items():
        start = LABELS.index(group)
        assert LABELS[start + 1 : start + 1 + len(tasks)] == tasks


def test_every_table_names_only_vocabulary_labels() -> None:
    assert set(ALIASES.values()) <= set(LABELS)
    assert {label for labels in CATEGORY_LABELS.values() for label in labels} <= set(LABELS)
    assert {rule.label for rule in KEYWORD_RULES} <= set(LABELS)


def test_normalize_label_ignores_case_spacing_and_hyphens() -> None:
    assert normalize_label("natural language processing") == "Natural Language Processing"
    assert normalize_label("  TEXT to image ") == "Text-to-Image"
    assert normalize_label("text-to-video") == "Text-to-Video"
    assert normalize_label("automatic-speech-recognition") == "Automatic Speech Recognition"
    assert normalize_label("'Question Answering'") == "Question Answering"


def test_normalize_label_knows_common_aliases() -> None:
    assert normalize_label("NLP") == "Natural Language Processing"
    assert normalize_label("ASR") == "Automatic Speech Recognition"
    assert normalize_label("VQA") == "Visual Question Answering"
    assert normalize_label("Others") == "Other"


def test_normalize_label_rejects_unknown_text() -> None:
    assert normalize_label("Quantum Chromodynamics") is None
    assert normalize_label("") is None


def test_every_label_normalizes_to_itself() -> None:
    for label in LABELS:
        assert normalize_label(label) == label
        assert normalize_label(label.upper()) == label


def test_group_of_and_family() -> None:
    assert group_of("Text Generation") == "Natural Language Processing"
    assert group_of("Computer Vision") is None
    assert label_family("Text-to-Image") == ("Text-to-Image", "Computer Vision", "Multimodal")
    assert label_family("Robotics") == ("Robotics", "Reinforcement Learning")


def test_llm_paper_in_cs_cl_is_natural_language_processing() -> None:
    labels = classify(
        "Tensor Product Attention Is All You Need",
        "Scaling language models to handle longer input sequences typically necessitates large "
        "key-value caches. We propose Tensor Product Attention for large language models (LLMs), "
        "improving language modeling perplexity.",
        ("cs.CL", "cs.AI", "cs.LG"),
    )
    assert "Natural Language Processing" in labels
    assert "Text Generation" in labels


def test_text_to_video_paper_gets_text_to_video_first_and_multimodal() -> None:
    labels = classify(
        "VideoAuteur: Towards Long Narrative Video Generation",
        "Recent video generation models have shown promising results in producing high-quality "
        "video clips lasting several seconds. We present a text-to-video pipeline.",
        ("cs.CV",),
    )
    assert labels[0] == "Text-to-Video"
    assert "Multimodal" in labels
    assert "Computer Vision" in labels


def test_speech_paper_gets_audio_tasks() -> None:
    labels = classify(
        "MinMo: A Multimodal Large Language Model for Seamless Voice Interaction",
        "MinMo supports speech recognition (ASR) and text-to-speech (TTS) with full-duplex "
        "conversation.",
        ("cs.CL", "cs.SD", "eess.AS"),
    )
    assert {"Automatic Speech Recognition", "Text-to-Speech"} <= set(labels)
    assert len(labels) <= MAX_LABELS


def test_robotics_category_and_reinforcement_learning_keywords() -> None:
    labels = classify(
        "Learning Dexterous Manipulation with Reinforcement Learning",
        "We train a robot hand policy with reinforcement learning in simulation.",
        ("cs.RO", "cs.LG"),
    )
    assert "Robotics" in labels
    assert "Reinforcement Learning" in labels


def test_graph_rag_paper_gets_question_answering_and_graph_ml() -> None:
    labels = classify(
        "Enhancing Structured-Data Retrieval with GraphRAG",
        "We build a knowledge graph and answer questions with retrieval-augmented generation.",
        (),
    )
    assert labels[:2] == ("Question Answering", "Graph Machine Learning")


def test_tasks_come_before_groups() -> None:
    labels = classify(
        "Open-Vocabulary Object Detection with Vision-Language Models",
        "We study open-vocabulary detection of objects in images.",
        ("cs.CV",),
    )
    groups = set(TAXONOMY)
    first_group = next(i for i, label in enumerate(labels) if label in groups)
    assert all(label in groups for label in labels[first_group:])
    assert labels[0] == "Zero-Shot Object Detection"


def test_acronyms_match_only_in_capitals() -> None:
    assert "Question Answering" not in classify("A rag doll", "The rag was red.", ())
    assert "Question Answering" in classify("RAG for science", "", ())


def test_a_weak_hint_alone_does_not_make_a_task() -> None:
    labels = classify("On the theory of optimisation", "We use an LLM once.", ("math.OC",))
    assert labels == ("Other",)


def test_other_only_when_nothing_else_and_nothing_without_input() -> None:
    assert classify("Untitled", "", ()) == ("Other",)
    assert classify("", "", ()) == ()
    assert "Other" not in classify("Segmentation of cells", "", ("cs.CV", "q-bio.QM"))


def test_finance_time_series_category() -> None:
    labels = classify("Stock returns", "We study returns.", ("q-fin.ST",))
    assert labels[0] == "Time Series Forecasting"


def test_classify_is_deterministic() -> None:
    args = ("Video LLMs for video question answering", "Video understanding.", ("cs.CV",))
    assert classify(*args) == classify(*args)


_words = st.sampled_from(
    [
        "LLM", "video generation", "speech", "robot", "graph neural network", "segmentation",
        "question answering", "text-to-image", "@everyone", "e.g.", "multimodal", "tabular data",
        "time series", "the", "a", "of", "reinforcement learning", "OCR", "3D reconstruction",
    ]
)  # fmt: skip
_text = st.lists(_words | st.text(max_size=20), max_size=30).map(" ".join)
_categories = st.lists(
    st.sampled_from([*CATEGORY_LABELS, "math.CO", "physics.optics", "q-bio.NC", "xx.YY"]),
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(_text, _text, _categories, st.lists(_text, max_size=5))
def test_labels_are_always_from_the_vocabulary_and_at_most_four(
    title: str, abstract: str, categories: list[str], keywords: list[str]
) -> None:
    labels = classify(title, abstract, categories, keywords)
    assert set(labels) <= set(LABELS)
    assert len(labels) <= MAX_LABELS
    assert len(set(labels)) == len(labels)


# --- the prefilter that spares most regex scans: it must never change a count ---------------


def test_fold_maps_every_character_to_one_and_to_ascii_only_as_re_ignorecase_does() -> None:
    chars = "".join(map(chr, range(sys.maxunicode + 1)))
    folded = _fold(chars)
    assert len(folded) == len(chars)  # str.lower() never drops a character: one for one
    # What (?i) matches to an ASCII letter or digit folds to it (so _CASE_VARIANTS is complete)...
    alnum = {match.start() for match in re.finditer(r"(?i)[a-z0-9]", chars)}
    for code in alnum:
        assert folded[code] in string.ascii_lowercase + string.digits
        assert re.fullmatch(f"(?i){folded[code]}", chars[code])
    # ... and no other non-ASCII character folds to ASCII.
    ascii_results = {match.start() for match in re.finditer(r"[\x00-\x7f]", folded)}
    assert {code for code in ascii_results if code > 127} <= alnum


def test_literal_runs_and_their_whole_words() -> None:
    assert _literal_runs(r"(?:large )?vision[- ]language models?") == [
        ("vision language model", False, False)
    ]
    assert _whole_words("vision language model", False, False) == ["language"]
    assert _literal_runs(r"generat\w* (?:long |realistic )?videos?") == [
        ("generat", True, False),
        (" ", False, False),
        ("video", False, False),
    ]
    assert _literal_runs(r"text[- ]to[- ]3D") == [("text to 3D", True, True)]
    assert _whole_words("text to 3d", True, True) == ["text", "to", "3d"]
    assert _literal_runs("RL(?:HF|VR)?") == [("RL", True, False)]
    assert _whole_words("rl", True, False) == []
    assert _whole_words(" reasoning", False, True) == ["reasoning"]


@given(
    st.text(alphabet=string.printable + "éıK"),
    st.frozensets(st.text(alphabet="abx01", min_size=1, max_size=3)),
)
def test_words_of_a_fold_are_its_runs_of_letters_and_digits_in_the_vocabulary(
    text: str, vocabulary: frozenset[str]
) -> None:
    folded = _fold(text)
    words = set(re.findall("[a-z0-9]+", folded))
    assert _fold_words(folded, vocabulary) == words & vocabulary
    assert _fold_words(folded, _VOCABULARY) == words & _VOCABULARY


def _mangle(text: str, rnd: random.Random) -> str:
    """Odd casing, and letters re's IGNORECASE equates with ASCII ones (ı, İ, ſ, K: Kelvin)."""
    variants = {"i": "ıİI", "s": "ſS", "k": "\u212aK", "-": " -", " ": " -_"}
    return "".join(rnd.choice([c, c, c.swapcase(), *variants.get(c.lower(), "")]) for c in text)


_PIECES = sorted(
    {run for rule in KEYWORD_RULES for p in rule.patterns for run, *_ in _literal_runs(p)}
)
_FILLER = ["s", "es", "ing", "LLMs", "RAG", "image", "video", "model", "Fig. 2", "e.g.", "é", "_"]
_FILLER += ["large ", "L", "multi-vector", "semantic ", "fake news", "text ", "audio "]  # leads


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(_PIECES) | st.sampled_from(_FILLER) | st.text(max_size=4), max_size=25
    ),
    st.sampled_from(["", " ", "-", ", ", "\n", "(", "ı"]),
    st.randoms(use_true_random=False),
)
def test_every_match_starts_where_the_needs_say_one_could(
    parts: list[str], glue: str, rnd: random.Random
) -> None:
    raw = _mangle(glue.join(parts), rnd)
    text = _Text(raw)
    for _, matcher in _MATCHERS:
        assert _matching_places(matcher, raw) <= set(matcher.match_starts(text)), (
            matcher.regex.pattern,
            raw,
        )


def _matching_places(matcher: _Matcher, raw: str) -> set[int]:
    """Every place in ``raw`` where the matcher's regex matches (a scan meets some of them)."""
    return {place for place in range(len(raw) + 1) if matcher.regex.match(raw, place)}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(_PIECES) | st.sampled_from(_FILLER) | st.text(max_size=4), max_size=25
    ),
    st.sampled_from(["", " ", "-", ", ", "\n", "(", "ı"]),
    st.randoms(use_true_random=False),
)
def test_the_rule_index_leaves_out_only_rules_that_cannot_match(
    parts: list[str], glue: str, rnd: random.Random
) -> None:
    raw = _mangle(glue.join(parts), rnd)
    text = _Text(raw)
    candidates = dict(_candidates(text))
    for index, (_, matcher) in enumerate(_MATCHERS):
        indexed = matcher.match_starts(text, candidates[index]) if index in candidates else []
        assert _matching_places(matcher, raw) <= set(indexed), (matcher.regex.pattern, raw)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(_PIECES) | st.sampled_from(_FILLER) | st.text(max_size=4),
            max_size=12,
        ),
        min_size=3,
        max_size=3,
    ),
    st.sampled_from(["", " ", "-", ", ", "\n", "(", "ı"]),
    st.randoms(use_true_random=False),
)
def test_evidence_is_a_full_scan_of_every_rule_on_generated_text(
    parts: list[list[str]], glue: str, rnd: random.Random
) -> None:
    title, keywords, abstract = (_mangle(glue.join(part), rnd) for part in parts)
    fields = (title, abstract, ["cs.LG"], [keywords] if keywords else [])
    assert _evidence(*fields) == _full_scan_evidence(*fields), fields


def test_a_pattern_that_matches_a_few_texts_lists_the_words_its_matches_start_with() -> None:
    assert _expansions(r"RL(?:HF|VR)?") == {"RL", "RLHF", "RLVR"}
    assert _expansions(r"summari[sz]ation") == {"summarisation", "summarization"}
    assert _expansions(r"robotic\w*") is None
    assert _openers(r"(?:large )?language models?") == {"large", "language"}
    assert _openers(r"multi[- ]?modal") == {"multi", "multimodal"}
    assert _openers(r"L?VLMs?") == {"lvlm", "lvlms", "vlm", "vlms"}
    assert _openers(r"generat\w* videos?") == frozenset()


def test_a_match_can_start_as_far_before_its_first_run_as_the_pattern_allows() -> None:
    assert _lead_width(r"robots?") == 0
    assert _lead_width(r"L?VLMs?") == 1
    assert _lead_width(r"(?:large )?language models?") == len("large ")
    assert _lead_width(r"(?:dense|multi-vector) retrieval") == len("multi-vector")
    assert _lead_width(r"(?:(?:a|bc)d)?x") == 3
    with pytest.raises(ValueError):
        _lead_width(r"\w+ model")


def test_a_paper_tests_only_the_rules_its_words_can_trigger() -> None:
    text = _Text("A robot learns to grasp\\n\\nWe train a policy for robotic grasping.")
    tried = {KEYWORD_RULES[index].label for index, _ in _candidates(text)}
    assert "Robotics" in tried
    assert len(tried) < len(KEYWORD_RULES) // 4


def _full_scan_evidence(
    title: str, abstract: str, categories: list[str], keywords: list[str]
) -> tuple[dict[str, float], set[str]]:
    """The classifier's evidence as its docstring defines it: every rule's regex over the title,
    the keywords and the abstract, each whole."""
    scores = _category_scores(categories)
    strong = set(scores)
    for rule, matcher in _MATCHERS:
        title_hits, keyword_hits, abstract_hits = (
            len(matcher.regex.findall(part)) for part in (title, " ; ".join(keywords), abstract)
        )
        score = 3.0 * min(title_hits, 1) + 2.0 * min(keyword_hits, 1) + min(abstract_hits, 3)
        if score := score * rule.weight:
            scores[rule.label] = scores.get(rule.label, 0.0) + score
            strong.update([rule.label] if rule.weight >= 1.0 else [])
    for label, score in list(scores.items()):
        if label not in GROUPS and score >= 1.0:
            for group in label_family(label)[1:]:
                if group not in ("Reinforcement Learning", "Other"):
                    scores[group] = scores.get(group, 0.0) + 0.5 * score
    return scores, strong


def test_real_papers_get_the_tags_and_evidence_a_full_scan_of_every_rule_gives() -> None:
    with gzip.open(CLASSIFIED, "rt", encoding="utf-8") as lines:
        papers = [json.loads(line) for line in lines]
    assert len(papers) == 300
    for paper in papers:
        fields = (paper["title"], paper["abstract"], paper["categories"], paper["keywords"])
        assert classify(*fields) == tuple(paper["tags"]), paper["title"]
        assert _evidence(*fields) == _full_scan_evidence(*fields), paper["title"]
