"""Tag names as users type them: matching a spelling to a known tag, with suggestions."""

from __future__ import annotations

from bot.errors import InputError
from bot.suggest import did_you_mean


def tag_key(text: str) -> str:
    return " ".join(text.replace("-", " ").replace("_", " ").lower().split())


def resolve_tag(known: list[str], text: str) -> str:
    """Map user spelling (``computer-vision``) to a stored tag, or raise with suggestions."""
    wanted = tag_key(text)
    by_key = {tag_key(tag): tag for tag in known}
    if wanted in by_key:
        return by_key[wanted]
    hint = did_you_mean(text, known, key=tag_key, cutoff=0.5)
    raise InputError(f"unknown tag {text!r}{hint}; `paperbot search --list-tags` lists them")
