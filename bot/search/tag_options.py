"""Tag autocomplete: offer only names the command that asks will accept.

Two vocabularies exist. ``/search`` and ``/subscribe`` accept every stored tag and every label
of the classifier's vocabulary (a label no paper carries yet finds nothing, saying so; a
subscription to it waits for the first such paper). Digest filters and ``/ask`` accept the
vocabulary's labels only, since they filter by the label's family (bot.classify).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from bot.labels import LABELS, normalize_label
from bot.text import truncate

MAX_CHOICES = 25  # Discord's limit
MAX_VALUE = 100  # characters in a choice's name and value


def tag_names(counts: Mapping[str, int], *, vocabulary_only: bool) -> list[str]:
    """Every name offered: stored tags (most papers first) then the rest of the vocabulary."""
    if vocabulary_only:
        stored = [name for name in counts if normalize_label(name) == name]
    else:
        stored = list(counts)
    names = list(dict.fromkeys([*stored, *LABELS]))
    return [name for name in names if len(name) <= MAX_VALUE and "," not in name]


def complete_tag(
    counts: Mapping[str, int], typed: str, *, vocabulary_only: bool
) -> list[tuple[str, str]]:
    """At most 25 ``(label, value)`` pairs: names starting with ``typed`` first, then names
    containing it, then fuzzy matches. The label shows how many papers carry the tag."""
    names = tag_names(counts, vocabulary_only=vocabulary_only)
    wanted = typed.strip().lower()
    prefix = [name for name in names if name.lower().startswith(wanted)]
    contains = [n for n in names if wanted and wanted in n.lower() and n not in prefix]
    by_lower = {name.lower(): name for name in names}
    fuzzy = difflib.get_close_matches(wanted, list(by_lower), n=MAX_CHOICES, cutoff=0.3)
    ordered = list(dict.fromkeys([*prefix, *contains, *(by_lower[f] for f in fuzzy)]))
    return [(_label(name, counts), name) for name in ordered[:MAX_CHOICES]]


def complete_tag_list(
    counts: Mapping[str, int], typed: str, *, vocabulary_only: bool
) -> list[tuple[str, str]]:
    """For comma-separated options: complete the last item, keeping the earlier ones."""
    done, _, last = typed.rpartition(",")
    earlier = ", ".join(part.strip() for part in done.split(",") if part.strip())
    choices = complete_tag(counts, last, vocabulary_only=vocabulary_only)
    if not earlier:
        return choices
    return [
        (truncate(f"{earlier}, {label}", MAX_VALUE), f"{earlier}, {value}")
        for label, value in choices
        if len(earlier) + 2 + len(value) <= MAX_VALUE
    ]


def _label(name: str, counts: Mapping[str, int]) -> str:
    count = counts.get(name, 0)
    shown = f"{name} ({count})" if count else f"{name} (no papers yet)"
    return truncate(shown, MAX_VALUE)
