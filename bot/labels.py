"""The classification vocabulary: 53 labels, their groups, and the spellings people use.

The labels are the Hugging Face task taxonomy as used by the daily-ai-papers digests
(timlrx/daily-ai-papers, ``scripts/schemas.py``: ``ClassificationChoices``), in the same order:
each group label (``Multimodal``, ``Computer Vision``, ...) followed by its tasks. Everything that
names a tag (config, search, subscriptions, the classifier, the LLM) checks it here.
"""

from __future__ import annotations

import re

# Group label -> its task labels, in the order of the Hugging Face task taxonomy.
TAXONOMY: dict[str, tuple[str, ...]] = {
    "Multimodal": (
        "Image-Text-to-Text",
        "Visual Question Answering",
        "Document Question Answering",
        "Video-Text-to-Text",
        "Any-to-Any",
    ),
    "Computer Vision": (
        "Depth Estimation",
        "Image Classification",
        "Object Detection",
        "Image Segmentation",
        "Text-to-Image",
        "Image-to-Text",
        "Image-to-Image",
        "Image-to-Video",
        "Unconditional Image Generation",
        "Video Classification",
        "Text-to-Video",
        "Zero-Shot Image Classification",
        "Mask Generation",
        "Zero-Shot Object Detection",
        "Text-to-3D",
        "Image-to-3D",
        "Image Feature Extraction",
        "Keypoint Detection",
    ),
    "Natural Language Processing": (
        "Text Classification",
        "Token Classification",
        "Table Question Answering",
        "Question Answering",
        "Zero-Shot Classification",
        "Translation",
        "Summarization",
        "Feature Extraction",
        "Text Generation",
        "Text2Text Generation",
        "Fill-Mask",
        "Sentence Similarity",
    ),
    "Audio": (
        "Text-to-Speech",
        "Text-to-Audio",
        "Automatic Speech Recognition",
        "Audio-to-Audio",
        "Audio Classification",
        "Voice Activity Detection",
    ),
    "Tabular": ("Tabular Classification", "Tabular Regression", "Time Series Forecasting"),
    "Reinforcement Learning": ("Robotics",),
    "Other": ("Graph Machine Learning",),
}

LABELS: tuple[str, ...] = tuple(
    label for group, tasks in TAXONOMY.items() for label in (group, *tasks)
)
GROUPS: tuple[str, ...] = tuple(TAXONOMY)

# Tasks that bridge text and vision: the digests file them under Multimodal as well.
CROSS_MODAL: frozenset[str] = frozenset(
    {"Text-to-Image", "Image-to-Text", "Text-to-Video", "Text-to-3D"}
)

# Other spellings people (and LLMs) use for a label; keys are compared via _key().
ALIASES: dict[str, str] = {
    "nlp": "Natural Language Processing",
    "cv": "Computer Vision",
    "vision": "Computer Vision",
    "multi-modal": "Multimodal",
    "vision-language": "Multimodal",
    "speech": "Audio",
    "rl": "Reinforcement Learning",
    "others": "Other",
    "qa": "Question Answering",
    "vqa": "Visual Question Answering",
    "asr": "Automatic Speech Recognition",
    "speech recognition": "Automatic Speech Recognition",
    "tts": "Text-to-Speech",
    "speech synthesis": "Text-to-Speech",
    "text-to-text generation": "Text2Text Generation",
    "text-to-text": "Text2Text Generation",
    "image captioning": "Image-to-Text",
    "semantic segmentation": "Image Segmentation",
    "time series": "Time Series Forecasting",
    "graph ml": "Graph Machine Learning",
    "graph neural networks": "Graph Machine Learning",
    "vlm": "Image-Text-to-Text",
    "video generation": "Text-to-Video",
    "image generation": "Text-to-Image",
}

def _key(text: str) -> str:
    """Compare labels ignoring case, spaces, hyphens and underscores."""
    return re.sub(r"[\s_\-]+", "", text).casefold()


_BY_KEY: dict[str, str] = {_key(label): label for label in LABELS}
_BY_KEY.update({_key(alias): label for alias, label in ALIASES.items()})
_GROUP_OF: dict[str, str] = {task: group for group, tasks in TAXONOMY.items() for task in tasks}


def normalize_label(text: str) -> str | None:
    """Return the vocabulary label ``text`` names (case/spacing-insensitive, some aliases)."""
    return _BY_KEY.get(_key(text.strip().strip("'\"")))


def group_of(label: str) -> str | None:
    """The taxonomy group of a task label (None for a group label or an unknown one)."""
    return _GROUP_OF.get(label)


def label_family(label: str) -> tuple[str, ...]:
    """The label with the groups it belongs to, for filter matching (Text-to-Image -> CV, MM)."""
    family = [label]
    group = group_of(label)
    if group is not None:
        family.append(group)
    if label in CROSS_MODAL:
        family.append("Multimodal")
    return tuple(family)
