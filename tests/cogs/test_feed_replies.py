"""/digest's adapters: option parsing and the replies' text (no Discord, no store)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.delivery import feed_render
from bot.delivery.feed_service import (
    FeedHealth,
    GuildStatus,
    Preview,
    check_time,
    check_zone,
    parse_keywords,
    parse_sources,
    parse_tags,
)
from bot.delivery.sender import Outcome
from bot.errors import InputError
from bot.models import DigestFilters, Paper
from bot.store.feeds import Feed
from bot.store.ledger import Delivery

AT = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)


def test_tags_are_normalised_deduplicated_and_an_unknown_one_gets_a_suggestion() -> None:
    assert parse_tags("robotics, Robotics ,, computer-vision") == ("Robotics", "Computer Vision")
    assert parse_tags(None) == () and parse_tags("") == ()
    with pytest.raises(InputError, match=r"Unknown tag “Robotcs”.*Robotics"):
        parse_tags("Robotcs")


def test_keywords_sources_times_and_zones() -> None:
    assert parse_keywords(" diffusion ,video,, diffusion") == ("diffusion", "video")
    assert parse_sources(None) is None
    assert parse_sources("HF, arxiv, hf") == ("hf", "arxiv")
    for bad in ("", "hf, rss"):
        with pytest.raises(InputError, match="comma-separated list of hf, arxiv, digest"):
            parse_sources(bad)
    assert check_time("7:05") == "07:05"
    with pytest.raises(InputError, match="is not a time"):
        check_time("25:00")
    assert check_zone("Europe/Berlin") == "Europe/Berlin"
    with pytest.raises(InputError, match="is not a time zone"):
        check_zone("Mars/Olympus")


def test_a_feed_is_described_in_one_line_with_its_filters_and_state() -> None:
    feed = Feed(
        guild_id=1,
        channel_id=42,
        name="Vision",
        thread=True,
        filters=DigestFilters(
            include_tags=("Robotics",),
            exclude_keywords=("survey",),
            min_upvotes=3,
            max_papers=5,
        ),
        origin="config",
        paused=True,
        pause_reason="missing permissions",
    )
    assert feed_render.describe_feed(feed) == (
        "**Vision**: <#42> at 09:00 UTC; sources hf; layout compact, thread; tags Robotics; "
        "without survey; ≥3 upvotes; ≤5 papers; from config.toml — **paused**: missing permissions"
    )
    assert feed_render.remove_reply(feed).endswith(
        "(it is declared in config.toml and returns on restart)."
    )
    assert feed_render.edit_reply(feed, resumed=True).endswith(" The digest is resumed.")
    assert feed_render.list_reply([]) == "No digests yet. Create one with `/digest setup`."


def test_post_now_says_truthfully_what_happened() -> None:
    day = date(2025, 1, 14)
    assert feed_render.post_now_reply(Outcome("done", sent=2, total=2), day, "<#1>") == (
        "Posted 2 message(s) for 2025-01-14 in <#1>."
    )
    failed = Outcome("failed", sent=1, total=3, detail="HTTP 500", retry_at=AT)
    assert feed_render.post_now_reply(failed, day, "<#1>") == (
        "Posting failed (1 of 3 message(s) sent): HTTP 500. Retrying automatically; "
        f"next attempt at <t:{int(AT.timestamp())}:T>."
    )
    assert "deadline_hours" in feed_render.post_now_reply(Outcome("expired"), day, "<#1>")


def test_a_delivery_and_a_preview_are_described() -> None:
    retrying = Delivery(1, 1, date(2025, 1, 14), "retrying", None, "HTTP 503", 2, AT)
    assert feed_render.describe_delivery(retrying) == (
        "last: 2025-01-14 failed (HTTP 503), attempt 2; retrying, "
        f"next attempt at <t:{int(AT.timestamp())}:T>"
    )
    papers = [Paper("2501.00001", "A"), Paper("2501.00002", "B")]
    preview = Preview(date(2025, 1, 14), papers, [{}, {}, {}])
    assert feed_render.preview_reply(preview) == (
        "Preview of 2025-01-14: 2 papers (and 2 more messages)."
    )
    assert "pass this digest's filters" in feed_render.preview_reply(
        Preview(date(2025, 1, 14), [], [])
    )


def test_the_status_has_one_line_per_feed_then_fetches_alerts_and_usage() -> None:
    active = Feed(guild_id=1, channel_id=10, id=1)
    gone = Feed(guild_id=1, channel_id=11, id=2, origin="config")
    status = GuildStatus(
        feeds=[
            FeedHealth(active, None, AT, True),
            FeedHealth(gone, None, AT, False),
        ],
        fetches={"digest": None, "hf": (date(2025, 1, 14), "failed", 0, "HTTP 503")},
        alert_channel_id=99,
    )
    lines = feed_render.status_reply(status, "LLM: 10 tokens today").split("\n")
    assert lines[0] == f"<#10> ✅ active; nothing posted yet; next: <t:{int(AT.timestamp())}:f>"
    assert lines[1].startswith("<#11> ⚠️ channel gone") and "remove it from config.toml" in lines[1]
    assert (
        lines[2] == "Fetches: digest: imported by hand; hf: 2025-01-14 failed, 0 papers (HTTP 503)"
    )
    assert lines[3:] == ["Alerts go to <#99>.", "LLM: 10 tokens today"]
    assert feed_render.status_reply(GuildStatus([], {}, None)) == "No digests yet."
