"""Did-you-mean hints for mistyped names: config keys and sections, environment variables, tags.

Every "unknown X" message in paperbot ends with the same hint, made here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


def close_matches(
    word: str,
    choices: Iterable[str],
    *,
    key: Callable[[str], str] = str.casefold,
    limit: int = 3,
    cutoff: float = 0.6,
) -> list[str]:
    """The choices nearest to ``word`` (prefix matches first), compared through ``key``."""
    by_key: dict[str, str] = {}
    for choice in choices:
        by_key.setdefault(key(choice), choice)
    wanted = key(word)
    prefixed = [k for k in by_key if wanted and k.startswith(wanted)]
    close = difflib.get_close_matches(wanted, list(by_key), n=limit, cutoff=cutoff)
    return [by_key[k] for k in dict.fromkeys(prefixed + close)][:limit]


def did_you_mean(word: str, choices: Iterable[str], **options: object) -> str:
    """`` (did you mean 'X'?)`` or `` (did you mean 'X', 'Y' or 'Z'?)``; "" if nothing is near."""
    found = close_matches(word, choices, **options)  # type: ignore[arg-type]
    if not found:
        return ""
    names = [repr(item) for item in found]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f" (did you mean {listed}?)"
