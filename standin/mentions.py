"""Who a message would ping, from its content and ``allowed_mentions`` (Discord's rules).

The answer ignores the sender's permissions on purpose: it says what ``allowed_mentions`` lets
through, i.e. what *would* ping if the bot had "Mention @everyone" and every role were mentionable.
That is the conservative view a safety test wants ("paper text never pings anyone").
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

USER_MENTION = re.compile(r"<@!?(\d{1,21})>")
ROLE_MENTION = re.compile(r"<@&(\d{1,21})>")
EVERYONE_MENTION = re.compile(r"@(everyone|here)")


class Pings(TypedDict):
    everyone: bool
    users: list[int]
    roles: list[int]
    replied_user: bool


def no_pings() -> Pings:
    return {"everyone": False, "users": [], "roles": [], "replied_user": False}


def _unique(values: list[str]) -> list[int]:
    out: list[int] = []
    for v in values:
        i = int(v)
        if i not in out:
            out.append(i)
    return out


def compute_pings(
    content: str | None,
    allowed_mentions: dict[str, Any] | None,
    *,
    replied_to_user: int | None = None,
) -> Pings:
    """What ``content`` pings under ``allowed_mentions``.

    ``allowed_mentions`` is ``None`` when the request body had no such key: Discord then parses
    every mention in the content (users, roles, @everyone/@here) and pings the author of a
    replied-to message.
    """
    text = content or ""
    users_in = _unique(USER_MENTION.findall(text))
    roles_in = _unique(ROLE_MENTION.findall(text))
    everyone_in = bool(EVERYONE_MENTION.search(text))

    if allowed_mentions is None:
        parse = {"users", "roles", "everyone"}
        user_ids: set[int] = set()
        role_ids: set[int] = set()
        replied = True
    else:
        parse = set(allowed_mentions.get("parse") or [])
        user_ids = {int(u) for u in allowed_mentions.get("users") or []}
        role_ids = {int(r) for r in allowed_mentions.get("roles") or []}
        replied = bool(allowed_mentions.get("replied_user", False))

    users = [u for u in users_in if "users" in parse or u in user_ids]
    roles = [r for r in roles_in if "roles" in parse or r in role_ids]
    replied_user = replied_to_user is not None and replied
    if replied_user and replied_to_user not in users:
        users.append(replied_to_user)  # type: ignore[arg-type]
    return {
        "everyone": everyone_in and "everyone" in parse,
        "users": users,
        "roles": roles,
        "replied_user": replied_user,
    }


def pings_anyone(pings: Pings) -> bool:
    return bool(pings["everyone"] or pings["users"] or pings["roles"])
