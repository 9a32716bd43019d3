"""Fetching a day's listing from a configured source (used by the CLI and the scheduler)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date

import aiohttp

from bot.config import Config
from bot.errors import SourceError
from bot.models import Entry, merge_papers
from bot.pacing import WindowLimiter
from bot.sources.arxiv import fetch_arxiv_day
from bot.sources.hf_daily import fetch_hf_day, fetch_hf_paper_details
from bot.sources.http import RetryPolicy

log = logging.getLogger(__name__)

ARXIV_MIN_INTERVAL = 3.0  # seconds between arXiv API requests, as arXiv asks


class Fetcher:
    """Fetches listings with the configured endpoints, retries and pacing."""

    def __init__(self, session: aiohttp.ClientSession, config: Config) -> None:
        self.session = session
        self.config = config
        self.policy = RetryPolicy(
            timeout=config.sources.http_timeout, retries=config.sources.http_retries
        )
        self.arxiv_limiter = WindowLimiter(1, ARXIV_MIN_INTERVAL)

    async def fetch_day(self, source: str, day: date) -> list[Entry]:
        """One day's listing from ``source`` ("hf" or "arxiv"); raises SourceError."""
        sources = self.config.sources
        if source == "hf":
            entries = await fetch_hf_day(self.session, day, sources.hf_base_url, policy=self.policy)
            if sources.hf_enrich:
                entries = [await self._enrich(entry) for entry in entries]
            return entries
        if source == "arxiv":
            return await fetch_arxiv_day(
                self.session,
                sources.arxiv_categories,
                day,
                base_url=sources.arxiv_base_url,
                limiter=self.arxiv_limiter,
                max_results=sources.arxiv_max_results,
                policy=self.policy,
            )
        raise SourceError(f"unknown source {source!r}")

    async def _enrich(self, entry: Entry) -> Entry:
        """Add linked models, datasets and Spaces; a failure only loses the enrichment."""
        try:
            details = await fetch_hf_paper_details(
                self.session,
                entry.paper.arxiv_id,
                self.config.sources.hf_base_url,
                policy=self.policy,
            )
        except SourceError as exc:
            log.warning("no Hugging Face details for %s: %s", entry.paper.arxiv_id, exc)
            return entry
        return replace(entry, paper=merge_papers(entry.paper, details))
