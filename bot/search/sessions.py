"""The searches behind `/search` result messages, for their Previous / Next buttons.

Held by the bot (``PaperBot.search_sessions``) rather than by a cog, so that the buttons and
`/forgetme` reach them without going through another cog.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date

from bot.search.cache import ResultCache
from bot.search.engine import SearchResult

SESSION_TTL = 15 * 60  # seconds a result's buttons keep working
MAX_SESSIONS = 2000


@dataclass
class SearchSession:
    """What a result message's Previous / Next buttons need to fetch another page."""

    user_id: int
    text: str
    tags: tuple[str, ...]
    authors: tuple[str, ...]
    since: date | None
    until: date | None
    sort: str
    created: float

    def key(self, page: int) -> tuple:
        """Identical searches share their result pages (``SearchSessions.results``)."""
        return (self.text, self.tags, self.authors, self.since, self.until, self.sort, page)


class SearchSessions:
    """Recent searches by token, bounded in number and age (they are cheap to lose), and the
    recent result pages shared by identical searches."""

    def __init__(self, ttl: float = SESSION_TTL, capacity: int = MAX_SESSIONS) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._items: OrderedDict[str, SearchSession] = OrderedDict()
        self.results: ResultCache[SearchResult] = ResultCache()

    def add(self, session: SearchSession) -> str:
        token = secrets.token_hex(6)
        self._items[token] = session
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return token

    def forget_user(self, user_id: int) -> None:
        for token in [t for t, s in self._items.items() if s.user_id == user_id]:
            del self._items[token]

    def get(self, token: str) -> SearchSession | None:
        session = self._items.get(token)
        if session is None or time.monotonic() - session.created > self.ttl:
            self._items.pop(token, None)
            return None
        return session
