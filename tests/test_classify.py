"""The label vocabulary and the keyword/category classifier."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.classify import (
    ALIASES,
    CATEGORY_LABELS,
    KEYWORD_RULES,
    LABELS,
    MAX_LABELS,
    TAXONOMY,
    classify,
    group_of,
    label_family,
    normalize_label,
)

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
