"""A deterministic, non-LLM classifier into the vocabulary of :mod:`bot.labels`.

:func:`classify` scores labels from three evidence tables, all below:

* :data:`CATEGORY_LABELS` / :data:`ARCHIVE_LABELS`: arXiv categories (the primary counts most);
* :data:`KEYWORD_RULES`: phrases in title (x3), HF keywords (x2), abstract (x1, 3 hits max);
* the group of each matched task (:data:`bot.labels.TAXONOMY`, plus ``Multimodal`` for
  text<->vision tasks).

It returns at most 3 task labels (highest score first) followed by group labels, 4 labels at most.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from bot.labels import (
    GROUPS,
    LABELS,
    label_family,
)

# Groups too broad to add just because one of their tasks matched (a robot is not RL).
_NOT_IMPLIED: frozenset[str] = frozenset({"Reinforcement Learning", "Other"})

# arXiv category -> labels it implies (checked before ARCHIVE_LABELS).
CATEGORY_LABELS: dict[str, tuple[str, ...]] = {
    "cs.CL": ("Natural Language Processing",),
    "cs.CV": ("Computer Vision",),
    "eess.IV": ("Computer Vision",),
    "cs.GR": ("Computer Vision",),
    "cs.MM": ("Multimodal",),
    "cs.SD": ("Audio",),
    "eess.AS": ("Audio",),
    "cs.RO": ("Robotics",),
    "cs.SI": ("Graph Machine Learning",),
    "cs.DB": ("Tabular",),
    "q-fin.ST": ("Time Series Forecasting",),
    "q-fin.TR": ("Time Series Forecasting",),
    "q-fin.PM": ("Time Series Forecasting",),
    "econ.EM": ("Time Series Forecasting",),
    # General machine learning says nothing about the task: keywords decide.
    "cs.LG": (),
    "cs.AI": (),
    "stat.ML": (),
    "cs.NE": (),
    "cs.IR": (),
    "cs.MA": (),
}
# arXiv archive (the part before the dot) -> labels, for categories not listed above.
ARCHIVE_LABELS: dict[str, tuple[str, ...]] = {
    archive: ("Other",)
    for archive in (
        "astro-ph", "cond-mat", "econ", "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th",
        "math", "math-ph", "nlin", "nucl-ex", "nucl-th", "physics", "q-bio", "q-fin",
        "quant-ph", "stat",
    )
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rule:
    """Regular expressions for one label, matched as whole words.

    Case-insensitive, except acronyms written in capitals (``VQA``, ``LLMs?``), which must match
    exactly so that "rag" or "ner" in running text do not count.
    """

    label: str
    patterns: tuple[str, ...]
    weight: float = 1.0  # below 1, one mention in the abstract alone is not enough


def _rule(label: str, *patterns: str, weight: float = 1.0) -> Rule:
    return Rule(label, patterns, weight)


# Label <- phrases. Order breaks ties: more specific rules come first.
KEYWORD_RULES: tuple[Rule, ...] = (
    # Multimodal
    _rule("Visual Question Answering", r"visual question answering", r"VQA"),
    _rule(
        "Document Question Answering",
        r"document (?:question answering|QA|understanding)",
        r"DocVQA",
        r"chart (?:understanding|question answering|QA)",
    ),
    _rule(
        "Video-Text-to-Text",
        r"video (?:question answering|QA|understanding|captioning)",
        r"video[- ](?:LLM|large language model|language model)s?",
    ),
    _rule(
        "Any-to-Any",
        r"any[- ]to[- ]any",
        r"omni[- ]?modal\w*",
        r"unified (?:multimodal )?(?:understanding and generation)",
    ),
    _rule(
        "Image-Text-to-Text",
        r"(?:large )?vision[- ]language models?",
        r"L?VLMs?",
        r"multimodal large language models?",
        r"MLLMs?",
        r"visual instruction tuning",
    ),
    # Computer vision
    _rule(
        "Text-to-Video",
        r"text[- ]to[- ]video",
        r"video generation",
        r"video diffusion",
        r"video synthesis",
        r"generat\w* (?:long |realistic |high-quality )?videos?",
    ),
    _rule("Image-to-Video", r"image[- ]to[- ]video", r"image animation"),
    _rule("Text-to-3D", r"text[- ]to[- ]3D", r"3D (?:generation|asset|content creation)"),
    _rule(
        "Image-to-3D",
        r"image[- ]to[- ]3D",
        r"3D reconstruction",
        r"novel view synthesis",
        r"gaussian splatting",
        r"NeRFs?",
        r"neural radiance fields?",
    ),
    _rule("Text-to-Image", r"text[- ]to[- ]image", r"image generation", r"image synthesis"),
    _rule(
        "Image-to-Image",
        r"image[- ]to[- ]image",
        r"image editing",
        r"super[- ]resolution",
        r"inpainting",
        r"style transfer",
        r"image restoration",
    ),
    _rule("Unconditional Image Generation", r"unconditional (?:image )?generation"),
    _rule(
        "Image-to-Text",
        r"image[- ]to[- ]text",
        r"image caption\w*",
        r"captioning",
        r"OCR",
        r"optical character recognition",
    ),
    _rule(
        "Zero-Shot Object Detection",
        r"open[- ]vocabulary (?:object )?detection",
        r"zero[- ]shot (?:object )?detection",
    ),
    _rule("Object Detection", r"object detection", r"object detectors?", r"bounding box(?:es)?"),
    _rule("Mask Generation", r"segment anything", r"mask generation"),
    _rule("Image Segmentation", r"(?:semantic |instance |panoptic |image )?segmentation"),
    _rule("Depth Estimation", r"depth estimation", r"monocular depth"),
    _rule("Keypoint Detection", r"keypoints?(?: detection)?", r"pose estimation"),
    _rule("Zero-Shot Image Classification", r"zero[- ]shot image classification"),
    _rule("Image Classification", r"image classification"),
    _rule("Image Classification", r"ImageNet", weight=0.5),
    _rule("Video Classification", r"video classification", r"action recognition"),
    _rule(
        "Image Feature Extraction",
        r"visual (?:representation|feature|encoder)s?",
        r"image (?:embedding|representation|feature)s?",
        r"vision (?:encoder|backbone)s?",
    ),
    # Natural language processing
    _rule("Table Question Answering", r"table (?:question answering|QA|understanding|reasoning)"),
    _rule(
        "Question Answering",
        r"question[- ]answering",
        r"QA",
        r"(?:mathematical|math|multi-hop|commonsense|medical|scientific) reasoning",
        r"retrieval[- ]augmented generation",
        r"RAG",
    ),
    _rule("Question Answering", r"reasoning", weight=0.5),
    _rule("Zero-Shot Classification", r"zero[- ]shot (?:text )?classification"),
    _rule(
        "Text Classification",
        r"text classification",
        r"sentiment analysis",
        r"hate speech",
        r"(?:fake news|misinformation|toxicity|stance) detection",
    ),
    _rule(
        "Token Classification",
        r"named entity recognition",
        r"NER",
        r"part[- ]of[- ]speech tagging",
        r"token classification",
        r"sequence labell?ing",
    ),
    _rule("Translation", r"machine translation", r"(?:speech|text) translation"),
    _rule("Summarization", r"summari[sz]ation", r"summari[sz]ing"),
    _rule("Sentence Similarity", r"sentence similarity", r"semantic (?:textual )?similarity"),
    _rule(
        "Feature Extraction",
        r"sentence embeddings?",
        r"(?:text )?embedding models?",
        r"(?:dense|sparse|neural|passage|document|multi-vector) retrieval",
        r"retrievers?",
    ),
    _rule(
        "Text2Text Generation",
        r"text[- ]to[- ]text",
        r"text[- ]to[- ]SQL",
        r"paraphras\w+",
        r"grammatical error correction",
    ),
    _rule("Fill-Mask", r"fill[- ]mask", r"masked language model\w*"),
    _rule(
        "Text Generation",
        r"text generation",
        r"code generation",
        r"story generation",
        r"instruction[- ]tun\w+",
        r"language modell?ing",
    ),
    _rule("Text Generation", r"(?:large )?language models?", r"LLMs?", weight=0.5),
    # Audio
    _rule(
        "Text-to-Speech",
        r"text[- ]to[- ]speech",
        r"TTS",
        r"speech synthesis",
        r"voice cloning",
        r"speech generation",
    ),
    _rule("Automatic Speech Recognition", r"speech recognition", r"ASR", r"speech[- ]to[- ]text"),
    _rule("Text-to-Audio", r"text[- ]to[- ](?:audio|music)", r"(?:audio|music|sound) generation"),
    _rule(
        "Audio-to-Audio",
        r"audio[- ]to[- ]audio",
        r"speech enhancement",
        r"voice conversion",
        r"(?:audio |speech )?source separation",
        r"speech[- ]to[- ]speech",
    ),
    _rule("Voice Activity Detection", r"voice activity detection", r"VAD"),
    _rule(
        "Audio Classification",
        r"audio classification",
        r"sound event detection",
        r"speaker (?:verification|identification|recognition)",
        r"audio tagging",
    ),
    # Tabular, RL, other
    _rule("Time Series Forecasting", r"time[- ]series", r"forecasting"),
    _rule("Tabular Regression", r"tabular regression"),
    _rule("Tabular Classification", r"tabular (?:data )?classification", r"tabular data"),
    _rule(
        "Reinforcement Learning",
        r"reinforcement learning",
        r"RL(?:HF|VR)?",
        r"GRPO",
        r"PPO",
        r"policy optimi[sz]ation",
        r"reward models?",
    ),
    _rule(
        "Robotics",
        r"robots?",
        r"robotic\w*",
        r"embodied",
        r"locomotion",
        r"vision[- ]language[- ]action",
        r"VLAs?",
        r"autonomous driving",
    ),
    _rule(
        "Graph Machine Learning",
        r"graph neural networks?",
        r"GNNs?",
        r"knowledge graphs?",
        r"graph (?:learning|representation|transformer)s?",
        r"node classification",
        r"link prediction",
    ),
    # Groups named outright
    _rule(
        "Multimodal",
        r"multi[- ]?modal(?:ity|ities)?",
        r"vision[- ]language",
        r"audio[- ]visual",
        r"cross[- ]modal",
    ),
    _rule("Audio", r"audio", r"speech", r"music", r"voice", r"spoken", weight=0.5),
    _rule("Computer Vision", r"images?", r"videos?", r"visual", r"vision", weight=0.5),
    _rule(
        "Natural Language Processing",
        r"natural language",
        r"(?:large )?language models?",
        r"LLMs?",
        weight=0.5,
    ),
)

MAX_LABELS = 4
MAX_TASKS = 3
_TITLE_WEIGHT = 3.0
_KEYWORDS_WEIGHT = 2.0
_ABSTRACT_MAX_HITS = 3
_PRIMARY_CATEGORY_WEIGHT = 3.0
_CATEGORY_WEIGHT = 1.0
_IMPLIED_GROUP_FACTOR = 0.5
_THRESHOLD = 1.0


_ORDER: dict[str, int] = {label: index for index, label in enumerate(LABELS)}


def _is_acronym(pattern: str) -> bool:
    letters = re.sub(r"[()?:|]", "", pattern.replace("s?", ""))
    return letters.isalnum() and letters.isupper()


def _compile(rule: Rule) -> re.Pattern[str]:
    # Acronyms (VQA, LLMs) must match in capitals, so "rag" or "ner" in prose don't count.
    parts = (p if _is_acronym(p) else f"(?i:{p})" for p in rule.patterns)
    return re.compile(rf"(?<!\w)(?:{'|'.join(parts)})(?!\w)")


# Running every rule's regex over a whole abstract is slow, and most rules cannot match it. So
# each pattern comes with the literal text that all its matches contain (_literal_runs): its
# whole words must be words of the text (a set lookup) and its runs must occur in the text
# (str.find: as is for an acronym, else folded in the text's _fold). Where they do, the regex
# is tried only where a match could start: at most _lead_width characters before an occurrence
# of the first run. None of this changes a count: every match contains its pattern's text.

# Non-ASCII characters that (?i) matches to an ASCII letter but that str.lower() does not turn
# into it (the Kelvin sign does become "k"); tests/digest/test_classify.py checks every code point.
_CASE_VARIANTS: dict[int, str] = {0x130: "i", 0x131: "i", 0x17F: "s"}
_WORD_RE = re.compile(r"[a-z0-9]+")
_NOT_WORD = str.maketrans({c: " " for c in map(chr, range(128)) if _WORD_RE.fullmatch(c) is None})
# What a literal run of a pattern is made of (see _literal_runs).
_LITERAL_CHARS = frozenset(string.ascii_letters + string.digits + " -")


def _fold(text: str) -> str:
    """``text`` in lowercase with hyphens as spaces, where case-insensitive runs are sought.

    Each character that ``(?i)`` matches to an ASCII letter becomes that letter in lowercase,
    a hyphen becomes a space and every character stays one character, so where a ``(?i)``
    pattern matches ``text``, ``_fold(text)`` holds its folded runs at the same places
    (``_fold("Text-to-3D") == "text to 3d"``).
    """
    if not text.isascii():
        text = text.translate(_CASE_VARIANTS)
    return text.lower().replace("-", " ")


def _fold_words(folded: str, vocabulary: frozenset[str]) -> set[str]:
    """The words of a fold (its longest runs of ASCII lowercase letters and digits) that are in
    ``vocabulary``: a set of the few words the rules name is built faster than one of all."""
    if folded.isascii():  # the same, faster
        return vocabulary.intersection(folded.translate(_NOT_WORD).split())
    return vocabulary.intersection(_WORD_RE.findall(folded))


def _atom_end(pattern: str, start: int) -> int:
    """Where the regex atom at ``start`` ends: a group, a class, an escape or one character."""
    if pattern[start] == "\\":
        return start + 2
    if pattern[start] == "[":
        return pattern.index("]", start + 1) + 1
    if pattern[start] != "(":
        return start + 1
    depth = 0
    for index in range(start, len(pattern)):
        depth += {"(": 1, ")": -1}.get(pattern[index], 0)
        if depth == 0:
            return index + 1
    raise ValueError(f"unbalanced parentheses in {pattern!r}")


def _atoms(pattern: str) -> Iterator[tuple[int, str, str]]:
    """The top-level atoms of ``pattern`` in order: where each starts, the atom, and its
    quantifier: "?", "*", "+", "{" (a counted one, left for the next atom) or ""."""
    index = 0
    while index < len(pattern):
        end = _atom_end(pattern, index)
        quantifier = pattern[end : end + 1]
        if quantifier not in ("?", "*", "+", "{"):
            quantifier = ""
        yield index, pattern[index:end], quantifier
        index = end + (quantifier in ("?", "*", "+"))


def _literal_runs(pattern: str) -> list[tuple[str, bool, bool]]:
    """The runs of literal text that every match of ``pattern`` contains, in its case.

    Each comes with whether it starts and whether it ends the pattern. A run is made of ASCII
    letters, digits, spaces, hyphens and ``[- ]``, read as a space (as :func:`_fold` reads a
    hyphen); anything else (a group, a class, an escape, a quantified character) ends it. So
    ``r"(?:large )?vision[- ]language models?"`` has one run, "vision language model", which
    neither starts nor ends it. Top-level alternation and counted repetition raise ValueError.
    """
    runs: list[tuple[str, bool, bool]] = []
    run, run_start = "", 0
    for index, atom, quantifier in _atoms(pattern):
        atom = " " if atom == "[- ]" else atom
        if atom in ("|", "{", "}"):
            raise ValueError(f"unsupported syntax {atom!r} in {pattern!r}")
        if atom in _LITERAL_CHARS and not quantifier:
            run_start = run_start if run else index
            run += atom
        elif run:
            runs.append((run, run_start == 0, False))
            run = ""
    if run:
        runs.append((run, run_start == 0, True))
    return runs


_MAX_EXPANSIONS = 64


def _expansions(pattern: str) -> set[str] | None:
    """Every text ``pattern`` matches (case aside), if it matches a few: letters, classes,
    ``(?:...)`` groups, alternation and ``?``; None for ``*``, ``+``, ``{`` or too many texts."""
    alternatives: set[str] = set()
    texts = {""}
    for _, atom, quantifier in _atoms(pattern):
        if quantifier in ("*", "+", "{"):
            return None
        if atom == "|":
            alternatives |= texts
            texts = {""}
            continue
        if atom.startswith("(?:"):
            pieces = _expansions(atom[3:-1])
        elif atom.startswith("["):
            pieces = set(atom[1:-1]) if "\\" not in atom and "^" not in atom else None
        elif atom.startswith(("(", "\\")):
            pieces = None
        else:
            pieces = {atom}
        if pieces is None:
            return None
        if quantifier == "?":
            pieces = pieces | {""}
        texts = {text + piece for text in texts for piece in pieces}
        if len(texts) > _MAX_EXPANSIONS:
            return None
    alternatives |= texts
    return alternatives if len(alternatives) <= _MAX_EXPANSIONS else None


def _openers(pattern: str) -> frozenset[str]:
    """The folded words one of which every match of ``pattern`` starts with: a match lies
    between non-word characters, so the first word of its fold is a whole word of the text's
    fold. Empty where a pattern matches too many texts to list."""
    texts = _expansions(pattern)
    if texts is None:
        return frozenset()
    openers = frozenset(_fold(text).split(" ")[0] for text in texts)
    if not all(_WORD_RE.fullmatch(word) for word in openers):
        return frozenset()  # a match could start inside a word of the fold
    return openers


def _lead_width(pattern: str) -> int:
    """The most characters a match of ``pattern`` can have before its first literal run (see
    :func:`_literal_runs`): where a match can start, counting back from the run."""
    for index, atom, quantifier in _atoms(pattern):
        if (atom == "[- ]" or atom in _LITERAL_CHARS) and not quantifier:
            leads = _expansions(pattern[:index])
            if leads is None:
                raise ValueError(f"no bound on the text before the first run of {pattern!r}")
            return max(map(len, leads))
    raise ValueError(f"no literal text in {pattern!r}")


def _whole_words(run: str, starts: bool, ends: bool) -> list[str]:
    """The words of a folded run that a match has between non-word characters.

    A word next to a space of the run is bounded on that side; at the start or the end of the
    pattern, ``(?<!\\w)`` or ``(?!\\w)`` bounds it. So these are words of the fold of the text.
    """
    words = run.split(" ")
    last = len(words) - 1
    return [w for i, w in enumerate(words) if w and (i or starts) and (i < last or ends)]


class _Text:
    """A text to match rules against: as is, folded, and the words of its fold that rules name."""

    __slots__ = ("folded", "raw", "words")

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.folded = _fold(raw)
        self.words = _fold_words(self.folded, _VOCABULARY)  # all that any rule asks about


class _Need(NamedTuple):
    """What a text must hold for one pattern of a rule to match it."""

    words: frozenset[str]  # whole words, folded: all must be words of the text
    exact: bool  # whether the runs are sought as they are (an acronym's) or folded, in the fold
    first: str  # the first literal run: a match starts at most `lead` characters before it
    others: tuple[str, ...]  # the other runs
    lead: int
    openers: frozenset[str]  # folded words, one of which starts every match (if listed)


@dataclass(frozen=True, slots=True)
class _Matcher:
    """A rule's regex and what a text must hold for each of its patterns to match it."""

    regex: re.Pattern[str]
    needs: tuple[_Need, ...]

    @classmethod
    def of(cls, rule: Rule) -> _Matcher:
        needs = []
        for pattern in rule.patterns:
            exact = _is_acronym(pattern)
            runs = _literal_runs(pattern)
            if not runs:
                raise ValueError(f"no literal text in {pattern!r}")
            folded = [(_fold(run), starts, ends) for run, starts, ends in runs]
            words = frozenset(word for run in folded for word in _whole_words(*run))
            pieces = [run for run, _, _ in (runs if exact else folded)]
            lead, openers = _lead_width(pattern), _openers(pattern)
            needs.append(_Need(words, exact, pieces[0], tuple(pieces[1:]), lead, openers))
        return cls(_compile(rule), tuple(needs))

    def match_starts(self, text: _Text, needs: Iterable[_Need] | None = None) -> list[int]:
        """Where in ``text`` a match of the regex could start, in order.

        ``needs`` limits the search to some of the patterns' needs (the others must be unmet).
        """
        starts: set[int] = set()
        have = text.words
        for words, exact, first, others, lead, _ in self.needs if needs is None else needs:
            if not words <= have:
                continue
            haystack = text.raw if exact else text.folded
            found = haystack.find(first)
            if found < 0 or (others and any(run not in haystack for run in others)):
                continue
            while found >= 0:
                if lead:
                    starts.update(range(max(found - lead, 0), found + 1))
                else:
                    starts.add(found)
                found = haystack.find(first, found + 1)
        return sorted(starts)


_MATCHERS: tuple[tuple[Rule, _Matcher], ...] = tuple(
    (rule, _Matcher.of(rule)) for rule in KEYWORD_RULES
)

# A paper does not test every rule: most texts can meet only a few of the 166 patterns. Each
# pattern that needs whole words is filed under one of them (the longest, likely the rarest),
# and only the patterns filed under a word of the text are looked at (a set intersection and
# dictionary lookups). The 24 that need no whole word (``robots?``, ``LLMs?``) are looked at
# when their first literal run occurs in the text.
_Trigger = tuple[int, "_Need"]  # a matcher's index in _MATCHERS and one of its needs


def _index_needs() -> tuple[dict[str, list[_Trigger]], tuple[_Trigger, ...]]:
    by_word: dict[str, list[_Trigger]] = {}
    by_run: list[_Trigger] = []
    for index, (_, matcher) in enumerate(_MATCHERS):
        for need in matcher.needs:
            if need.words:
                key = max(sorted(need.words), key=len)
                by_word.setdefault(key, []).append((index, need))
            elif need.openers:  # "images?": under "image" and "images"
                for word in sorted(need.openers):
                    by_word.setdefault(word, []).append((index, need))
            else:
                by_run.append((index, need))
    return by_word, tuple(by_run)


_NEEDS_BY_WORD, _NEEDS_BY_RUN = _index_needs()
_TRIGGER_WORDS: frozenset[str] = frozenset(_NEEDS_BY_WORD)
# The words rules look for (whole words patterns need, words their matches start with): the
# only words of a text that matter (see _Text.words).
_VOCABULARY: frozenset[str] = frozenset(
    word for _, matcher in _MATCHERS for need in matcher.needs for word in need.words | need.openers
)


def _group_runs(exact: bool) -> tuple[tuple[str, tuple[_Trigger, ...]], ...]:
    """The needs filed by their first run (sought once per text), for runs sought as is or
    folded."""
    grouped: dict[str, list[_Trigger]] = {}
    for index, need in _NEEDS_BY_RUN:
        if need.exact == exact:
            grouped.setdefault(need.first, []).append((index, need))
    return tuple((run, tuple(triggers)) for run, triggers in grouped.items())


_RUNS_EXACT, _RUNS_FOLDED = _group_runs(True), _group_runs(False)


def _candidates(text: _Text) -> list[tuple[int, list[_Need]]]:
    """The matchers whose patterns ``text`` could meet, in rule order, with those needs."""
    found: dict[int, dict[_Need, None]] = {}  # a need filed under two words comes once
    have, raw, folded = text.words, text.raw, text.folded
    for word in have & _TRIGGER_WORDS:
        for index, need in _NEEDS_BY_WORD[word]:
            # Most needs filed under a common word ("video") want a phrase that is not there.
            if need.words <= have and need.first in (raw if need.exact else folded):
                found.setdefault(index, {})[need] = None
    for haystack, runs in ((raw, _RUNS_EXACT), (folded, _RUNS_FOLDED)):
        for run, triggers in runs:
            if run in haystack:
                for index, need in triggers:
                    found.setdefault(index, {})[need] = None
    return [(index, list(needs)) for index, needs in sorted(found.items())]


def _rule_score(
    rule: Rule,
    matcher: _Matcher,
    text: _Text,
    starts: Sequence[int],
    needs: Iterable[_Need] | None = None,
) -> float:
    """The rule's score on ``text``: its title, keywords and abstract start at ``starts``.

    The regex is tried where a match could start, in order, as a scan of the text would meet
    those places (a match hides the places inside it). Only the first hit in the title and in
    the keywords counts, and the first 3 in the abstract: a part is tried until its cap.
    """
    title = keywords = abstract = 0
    keywords_start, abstract_start = starts[1], starts[2]
    match, raw = matcher.regex.match, text.raw
    scanned = 0  # where the scan has got to
    for start in matcher.match_starts(text, needs):
        if start < scanned:
            continue
        if start >= abstract_start:
            if abstract == _ABSTRACT_MAX_HITS:
                break
        elif (keywords if start >= keywords_start else title):
            continue  # no match spans two parts: their joins are characters no pattern matches
        found = match(raw, start)
        if found is None:
            continue
        scanned = found.end()
        if start >= abstract_start:
            abstract += 1
        elif start >= keywords_start:
            keywords = 1
        else:
            title = 1
    score = _TITLE_WEIGHT * title + _KEYWORDS_WEIGHT * keywords + abstract
    return score * rule.weight


def _category_labels(category: str) -> tuple[str, ...]:
    if category in CATEGORY_LABELS:
        return CATEGORY_LABELS[category]
    return ARCHIVE_LABELS.get(category.split(".", 1)[0], ())


def _category_scores(categories: Sequence[str]) -> dict[str, float]:
    scores: dict[str, float] = {}
    for index, category in enumerate(categories):
        weight = _PRIMARY_CATEGORY_WEIGHT if index == 0 else _CATEGORY_WEIGHT
        for label in _category_labels(category.strip()):
            scores[label] = scores.get(label, 0.0) + weight
    return scores


def _implied_groups(task: str) -> tuple[str, ...]:
    return tuple(group for group in label_family(task)[1:] if group not in _NOT_IMPLIED)


def _evidence(
    title: str, abstract: str, categories: Sequence[str], keywords: Sequence[str]
) -> tuple[dict[str, float], set[str]]:
    """Scores per label, and the labels backed by a category or a full-weight rule."""
    # One text, its parts joined by characters no pattern matches, so no match spans two.
    keyword_text = " ; ".join(keywords)
    text = _Text("\n".join((title, keyword_text, abstract)))
    starts = (0, len(title) + 1, len(title) + len(keyword_text) + 2)
    scores = _category_scores(categories)
    strong = set(scores)
    for index, needs in _candidates(text):
        rule, matcher = _MATCHERS[index]
        score = _rule_score(rule, matcher, text, starts, needs)
        if score:
            scores[rule.label] = scores.get(rule.label, 0.0) + score
            if rule.weight >= 1.0:
                strong.add(rule.label)
    for label, score in list(scores.items()):
        if label in GROUPS or score < _THRESHOLD:
            continue
        for group in _implied_groups(label):
            scores[group] = scores.get(group, 0.0) + _IMPLIED_GROUP_FACTOR * score
    return scores, strong


def _ranked(scores: dict[str, float], labels: Iterable[str]) -> list[str]:
    kept = [label for label in labels if scores.get(label, 0.0) >= _THRESHOLD]
    return sorted(kept, key=lambda label: (-scores[label], _ORDER[label]))


def _pick_tasks(scores: dict[str, float], strong: set[str]) -> list[str]:
    """Tasks with strong evidence; a weak-only task (say, "uses an LLM") only when none has."""
    ranked = _ranked(scores, (label for label in scores if label not in GROUPS))
    picked = [label for label in ranked if label in strong]
    return picked[:MAX_TASKS] if picked else ranked[:1]


def classify(
    title: str, abstract: str, categories: Sequence[str], keywords: Iterable[str] = ()
) -> tuple[str, ...]:
    """Labels for a paper: up to 3 tasks (most specific first), then groups; 4 at most.

    Returns ``("Other",)`` when there is some input but no evidence, ``()`` for no input.
    """
    keywords = tuple(keywords)
    scores, strong = _evidence(title, abstract, categories, keywords)
    groups = _ranked(scores, (label for label in scores if label in GROUPS))
    labels = _pick_tasks(scores, strong) + groups
    if len(labels) > 1 and "Other" in labels:  # "Other" only when nothing else fits
        labels.remove("Other")
    labels = labels[:MAX_LABELS]
    if labels:
        return tuple(labels)
    has_input = title.strip() or abstract.strip() or categories or keywords
    return ("Other",) if has_input else ()
