from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from bot.sources.text import (
    clean_text,
    clean_texts,
    collapse_ws,
    fix_mojibake,
    parse_iso_day,
    split_sentences,
)


def test_mojibake_from_utf8_read_as_latin1_is_repaired() -> None:
    assert fix_mojibake("TransformerÂ²") == "Transformer²"
    assert fix_mojibake("Aurora RamÃ\xadrez") == "Aurora Ramírez"


def test_text_that_is_not_broken_is_left_exactly_as_it_is() -> None:
    for text in ("“Curly” quotes", "ﬁne ligature", "ＡＢＣ", "x &amp; y", "Benjamin Clavié", "Pål"):
        assert fix_mojibake(text) == text


@given(st.text(alphabet=st.characters(exclude_characters="\ufffd", max_codepoint=0x7F)))
def test_ascii_never_changes(text: str) -> None:
    assert fix_mojibake(text) == text


def test_collapse_ws_joins_line_breaks_and_runs_of_spaces() -> None:
    assert collapse_ws("  Large Multimodal\n  Models\t here ") == "Large Multimodal Models here"


# Every whitespace character str.split() knows, and some that look like it but are not.
_SPACES = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u3000\u200b"


@given(st.text(alphabet=st.sampled_from(_SPACES) | st.characters(), max_size=40))
def test_collapse_ws_of_any_text_is_its_words_joined_by_single_spaces(text: str) -> None:
    assert collapse_ws(text) == " ".join(text.split())


@given(st.lists(st.text(alphabet=st.sampled_from(_SPACES + "aÃ©\xadÂ²") | st.characters())))
def test_clean_texts_cleans_each_item_as_clean_text_does(items: list[str]) -> None:
    assert clean_texts(items) == [clean_text(item) for item in items]


def test_split_sentences_respects_abbreviations_and_initials() -> None:
    text = "We use e.g. GPT-4 as in J. Smith et al. and more. Then (A) works! 3 models exist."
    assert split_sentences(text) == (
        "We use e.g. GPT-4 as in J. Smith et al. and more.",
        "Then (A) works!",
        "3 models exist.",
    )
    assert split_sentences("  ") == ()
    assert split_sentences("no full stop") == ("no full stop",)


def test_parse_iso_day_reads_the_date_of_a_timestamp() -> None:
    assert parse_iso_day("2025-01-14T08:48:52.704Z") == date(2025, 1, 14)
    assert parse_iso_day("2025-02-30") is None
    assert parse_iso_day(None) is None
