"""The digest table as real archive days write it: wrapped rows, every summary form, odd cells.

Exact round trip: ``render_markdown_sections(parse_markdown_days(text)) == text`` for a file in
the seed's layout (blank, blank, heading, blank, header, separator, rows), with mojibake
repaired as the one normalisation.
"""

from __future__ import annotations

import logging
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import InputError
from bot.models import Paper, SummarySource
from bot.sources.markdown import (
    HEADER,
    SEPARATOR,
    parse_markdown,
    parse_markdown_days,
    render_markdown_sections,
    render_row,
)
from bot.sources.text import collapse_ws, split_sentences
from tests.sources.helpers import SOURCE_FIXTURES

DIGESTS = SOURCE_FIXTURES / "digests"
REAL_DAYS = ["2024-09-27.md", "2024-10-15_4_rows.md", "2025-03-11_5_rows.md", "2025-09-26.md"]


def _doc(*rows: str, day: str = "2025-03-11") -> str:
    return "\n".join(["", "", f"## Papers for {day}", "", HEADER, SEPARATOR, *rows]) + "\n"


# --- the real days ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REAL_DAYS)
def test_real_archive_days_export_byte_for_byte(name: str) -> None:
    text = (DIGESTS / name).read_text(encoding="utf-8")
    assert render_markdown_sections(parse_markdown_days(text)) == text


def test_rows_wrapped_inside_the_title_and_a_link_import_as_one_row_each() -> None:
    entries = parse_markdown((DIGESTS / "2025-03-11_5_rows.md").read_text(encoding="utf-8"))
    assert len(entries) == 5
    first = entries[0].paper
    assert first.arxiv_id == "2503.03601"
    assert first.title == (
        "Feature-Level Insights into Artificial Text Detection with Sparse Autoencoders"
    )
    # the HF link's URL wraps too: the wrap is not part of the URL
    assert first.hf_urls == ("https://mgtsaevis.github.io/mgt-sae-visualization/",)
    assert first.authors[0] == "Kristian Kuznetsov" and len(first.bullets) == 5
    assert entries[0].listing.row.count("\n") == 2  # one row over three lines
    assert [e.listing.rank for e in entries] == [1, 2, 3, 4, 5]
    assert entries[3].paper.title == "Automated Movie Generation via Multi-Agent CoT Planning"
    assert entries[1].paper.tags == ("Multimodal", "Reinforcement Learning")


def test_bullet_point_summaries_and_dash_summaries_both_import() -> None:
    entries = parse_markdown((DIGESTS / "2024-10-15_4_rows.md").read_text(encoding="utf-8"))
    mmie = entries[0].paper
    assert entries[0].listing.row.split(" | ")[2].startswith("• MMIE is a large-scale")
    assert len(mmie.bullets) == 5 and mmie.bullets[0].startswith("MMIE is a large-scale")
    assert all("•" not in bullet for bullet in mmie.bullets)
    assert all(len(entry.paper.bullets) >= 3 for entry in entries)


# --- exactness of what the store would hand back ------------------------------------------------


def test_a_later_llm_summary_replaces_only_the_summary_cell() -> None:
    [entry] = parse_markdown((DIGESTS / "2025-03-11_5_rows.md").read_text(encoding="utf-8"))[:1]
    enriched = Paper(
        **{
            **{name: getattr(entry.paper, name) for name in entry.paper.__slots__},
            "bullets": ("One new bullet.", "And another."),
            "bullets_source": SummarySource.LLM,
        }
    )
    row = render_row(enriched, entry.listing.row)
    assert "| - One new bullet. - And another. |" in row
    # the wrapped title and the wrapped link are still as written
    assert row.startswith("| [Feature-Level Insights into Artificial Text Detection with Sparse\n")
    assert row.endswith("| [Link](https://mgtsaevis.github.io/\nmgt-sae-visualization/) |")
    assert render_row(entry.paper, entry.listing.row) == entry.listing.row


def test_a_row_from_another_source_renders_in_the_seed_style() -> None:
    paper = Paper("2501.00001", "A title", ("Ann",), bullets=("One.", "Two."))
    assert render_row(paper) == (
        "| [A title](https://arxiv.org/abs/2501.00001) | Ann | - One. - Two. | [] | N/A | N/A |"
    )


def test_a_stored_row_of_another_paper_is_not_used() -> None:
    [entry] = parse_markdown((DIGESTS / "2025-03-11_5_rows.md").read_text(encoding="utf-8"))[:1]
    other = Paper("2501.00001", "A title")
    assert render_row(other, entry.listing.row) == render_row(other)


# --- odd cells real days hold -------------------------------------------------------------------


def test_crlf_line_ends_a_bom_and_trailing_spaces_are_read() -> None:
    row = (
        "| [A wrapped  \n  title](https://arxiv.org/abs/2501.00001) | Ann,\n  Bob | "
        "- One. - Two. | ['Multimodal'] | N/A | N/A |   "
    )
    text = "\ufeff" + _doc(row).replace("\n", "\r\n")
    [entry] = parse_markdown(text)
    assert entry.paper.title == "A wrapped title"
    assert entry.paper.authors == ("Ann", "Bob")
    assert entry.listing.row == row  # CRLF read as LF, trailing spaces kept
    # the export writes LF and no BOM (the documented normalisations)
    assert render_markdown_sections(parse_markdown_days(text)) == _doc(row)


def test_a_missing_closing_pipe_and_a_wrapped_last_cell() -> None:
    rows = [
        "| [T1](https://arxiv.org/abs/2501.00001) | A | - b | ['X'] | N/A | N/A",
        "| [T2](https://arxiv.org/abs/2501.00002) | A | - b | ['X'] | N/A | [Link](https://hf.co/",
        "  org/model)",
        "| [T3](https://arxiv.org/abs/2501.00003) | A | - b | ['X'] | N/A | N/A |",
    ]
    text = _doc(*rows)
    entries = parse_markdown(text)
    assert [e.paper.arxiv_id for e in entries] == ["2501.00001", "2501.00002", "2501.00003"]
    assert entries[1].paper.hf_urls == ("https://hf.co/org/model",)
    assert render_markdown_sections(parse_markdown_days(text)) == text


def test_a_row_whose_pipe_wraps_onto_the_next_line() -> None:
    rows = [
        "| [T1](https://arxiv.org/abs/2501.00001) | Ann, Bob",
        "| - b - c | ['X'] | N/A | N/A |",
        "| [T2](https://arxiv.org/abs/2501.00002) | A | - b | ['X'] | N/A | N/A |",
    ]
    entries = parse_markdown(_doc(*rows))
    assert [e.paper.authors for e in entries] == [("Ann", "Bob"), ("A",)]
    assert entries[0].paper.bullets == ("b", "c")


def test_link_cells_that_are_not_urls_are_kept_out_of_the_links_with_a_note(caplog) -> None:
    row = (
        "| [T](https://arxiv.org/abs/2501.00001) | A | - b | ['X'] | [Link](string) | "
        "see the paper |"
    )
    text = _doc(row)
    with caplog.at_level(logging.WARNING, logger="bot.sources.markdown"):
        [entry] = parse_markdown(text)
    assert entry.paper.github_urls == () and entry.paper.hf_urls == ()
    notes = [r.getMessage() for r in caplog.records]
    assert any("line 7" in n and "'string' is not a web URL" in n for n in notes)
    assert any("'see the paper' is not a web URL" in n for n in notes)
    assert render_markdown_sections(parse_markdown_days(text)) == text


@pytest.mark.parametrize("empty", ["N/A", "", "n/a", "None", "-", "[]"])
def test_empty_markers_in_every_optional_cell(empty: str) -> None:
    row = "| [T](https://arxiv.org/abs/2501.00001) |" + f" {empty} |" * 5
    [entry] = parse_markdown(_doc(row))
    paper = entry.paper
    assert (paper.authors, paper.bullets, paper.tags, paper.github_urls, paper.hf_urls) == (
        (),
        (),
        (),
        (),
        (),
    )
    assert paper.bullets_source is SummarySource.NONE


def test_latex_escaped_pipes_and_a_wrapped_label_list() -> None:
    row = (
        r"| [$\mathcal{O}(n)$ \| fast: $\text{Transformer}^2$](https://arxiv.org/abs/2501.00001)"
        " | A | - uses $\\|x\\|_2$ norms | ['Natural Language\n  Processing',\n  'Robotics'] "
        "| N/A | N/A |"
    )
    text = _doc(row)
    [entry] = parse_markdown(text)
    assert entry.paper.title == r"$\mathcal{O}(n)$ | fast: $\text{Transformer}^2$"
    assert entry.paper.bullets == ("uses $|x|_2$ norms",)
    assert entry.paper.tags == ("Natural Language Processing", "Robotics")
    assert render_markdown_sections(parse_markdown_days(text)) == text


# --- still strict where it must be --------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [
                "| [T](https://arxiv.org/abs/2501.00001) | A | - b |",
                "| [T2](https://arxiv.org/abs/2501.00002) | A | - b | ['X'] | N/A | N/A |",
            ],
            r"^line 7: expected 6 cells .* found 3",
        ),
        (
            [
                "| [T](https://arxiv.org/abs/2501.00001) | A | - b | ['X'] | N/A | N/A |",
                "| [T2](https://arxiv.org/abs/2501.00002) | A | - b | c | ['X'] | N/A | N/A",
                "  |",
            ],
            r"^line 8: expected 6 cells .* found 7",
        ),
        (
            ["| [T](https://arxiv.org/abs/2501.00001) | A | - b", "", "## Papers for 2025-03-12"],
            r"^line 7: expected 6 cells .* found 3",
        ),
        (
            ["| [T](https://example.com/x) | A | - b | ['X'] | N/A |", "  N/A |"],
            r"^line 7: the Title cell links to 'https://example.com/x', not an arXiv paper",
        ),
    ],
)
def test_a_really_broken_row_still_fails_with_its_line_number(
    rows: list[str], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        parse_markdown(_doc(*rows))


# --- property: wrapped rows and every summary form round-trip exactly --------------------------

# Words without the characters that delimit cells or links; no U+0080-U+00FF (ftfy would
# "repair" random strings that look like mojibake; repair has its own tests).
_WORD = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x30, max_codepoint=0x7A, exclude_characters="[]()|\\`<>"),
        st.sampled_from("$^{}:?'\"+=αβ中文🚀—“”"),
    ),
    min_size=1,
    max_size=8,
).filter(lambda w: w.upper() not in {"N/A", "NA", "NONE", "NULL", "-", "—"} and w != "•")
_WRAP = st.sampled_from([" ", " ", " ", "\n  ", " \n  ", "\n"])  # a space, or a line wrap


@st.composite
def _wrapped(draw: st.DrawFn, words: list[str], escape_pipe: bool = False) -> tuple[str, str]:
    """``(cell text as written, its one-line meaning)``: words joined by spaces or wraps."""
    written, meaning = words[0], words[0]
    for word in words[1:]:
        joint = draw(_WRAP)
        if escape_pipe and draw(st.booleans()):
            written, meaning = written + joint + "\\|", meaning + " |"
        written, meaning = written + joint + word, meaning + " " + word
    return written, meaning


_SUMMARY_FORMS = ("dash", "bullet", "prose", "na", "empty")


@st.composite
def _summary(draw: st.DrawFn) -> tuple[str, tuple[str, ...] | None]:
    """``(cell, expected bullets)``; None: prose, whose bullets are its sentences."""
    form = draw(st.sampled_from(_SUMMARY_FORMS))
    if form == "na":
        return "N/A", ()
    if form == "empty":
        return "", ()
    items = draw(st.lists(st.lists(_WORD, min_size=1, max_size=5), min_size=1, max_size=4))
    if form == "prose":
        text, _ = draw(_wrapped([word for item in items for word in [*item[:-1], item[-1] + "."]]))
        return text, None
    mark = "-" if form == "dash" else "•"
    parts, bullets = [], []
    for item in items:
        text, meaning = draw(_wrapped(item))
        gap = draw(st.sampled_from(["", " ", "  "]))
        parts.append(f"{mark}{draw(st.sampled_from([' ', '  ']))}{text}{gap}")
        bullets.append(meaning)
    lead = draw(st.sampled_from(["", " ", "  "]))
    return lead + " ".join(parts).rstrip(), tuple(dict.fromkeys(bullets))


_URLS = st.from_regex(r"https://(github\.com|hf\.co)/[a-z0-9]{1,8}/[a-z0-9]{1,8}", fullmatch=True)


@st.composite
def _link_cell(draw: st.DrawFn) -> tuple[str, tuple[str, ...]]:
    urls = draw(st.lists(_URLS, max_size=3, unique=True))
    if not urls:
        return draw(st.sampled_from(["N/A", "[Link](string)"])), ()
    links = []
    for url in urls:
        cut = draw(st.integers(9, len(url) - 1))
        wrapped = url[:cut] + "\n  " + url[cut:] if draw(st.booleans()) else url
        links.append(f"[Link]({wrapped})")
    return draw(st.sampled_from([", ", ",\n  "])).join(links), tuple(urls)


@st.composite
def _row(draw: st.DrawFn, arxiv_id: str) -> tuple[str, dict[str, object]]:
    title, title_meaning = draw(_wrapped(draw(st.lists(_WORD, min_size=1, max_size=8)), True))
    names = draw(st.lists(_WORD, max_size=4, unique=True))
    authors = draw(st.sampled_from([", ", ",\n  "])).join(names) if names else "N/A"
    summary, bullets = draw(_summary())
    labels = draw(st.lists(st.sampled_from(["Multimodal", "Robotics", "Text Generation"])))
    labels = list(dict.fromkeys(labels))
    tags = repr(labels).replace(", ", draw(st.sampled_from([", ", ",\n  "])))
    github, github_urls = draw(_link_cell())
    hf, hf_urls = draw(_link_cell())
    cells = [f"[{title}](https://arxiv.org/abs/{arxiv_id})", authors, summary, tags, github, hf]
    pads = [draw(st.sampled_from([(" ", " "), (" ", "  "), ("  ", " "), (" ", " \n  ")]))
            for _ in cells]  # fmt: skip
    # A row may lack its closing pipe (unless its last cell ends in a line wrap).
    closing = draw(st.sampled_from(["|", "|", "| ", "" if "\n" not in pads[-1][1] else "|"]))
    row = "|" + "|".join(f"{a}{cell}{b}" for cell, (a, b) in zip(cells, pads, strict=True))
    row += closing
    expected = {
        "title": collapse_ws(title_meaning),
        "authors": tuple(names),
        "bullets": bullets if bullets is not None else split_sentences(summary),
        "tags": tuple(labels),
        "github_urls": github_urls,
        "hf_urls": hf_urls,
    }
    return row, expected


@st.composite
def _archive(draw: st.DrawFn) -> tuple[str, list[tuple[date, list[dict[str, object]]]]]:
    days = draw(st.lists(st.dates(date(2024, 9, 1), date(2026, 12, 31)), max_size=3, unique=True))
    text, expected, serial = "", [], 0
    for day in days:
        rows, fields = [], []
        for _ in range(draw(st.integers(0, 3))):
            serial += 1
            row, want = draw(_row(f"2501.{serial:05d}"))
            rows.append(row)
            fields.append({"arxiv_id": f"2501.{serial:05d}", **want})
        text += _doc(*rows, day=day.isoformat())
        expected.append((day, fields))
    return text, expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_archive())
def test_wrapped_rows_and_every_summary_form_round_trip_exactly(
    archive: tuple[str, list[tuple[date, list[dict[str, object]]]]],
) -> None:
    text, expected = archive
    sections = parse_markdown_days(text)
    assert [day for day, _ in sections] == [day for day, _ in expected]
    for (_, entries), (_, fields) in zip(sections, expected, strict=True):
        got = [
            {
                "arxiv_id": e.paper.arxiv_id,
                "title": e.paper.title,
                "authors": e.paper.authors,
                "bullets": e.paper.bullets,
                "tags": e.paper.tags,
                "github_urls": e.paper.github_urls,
                "hf_urls": e.paper.hf_urls,
            }
            for e in entries
        ]
        assert got == fields
    assert render_markdown_sections(sections) == text


def test_a_paper_listed_twice_in_one_table_is_reported(caplog) -> None:
    row = "| [T](https://arxiv.org/abs/2501.00001) | A | - b | ['X'] | N/A | N/A |"
    with caplog.at_level(logging.WARNING, logger="bot.sources.markdown"):
        entries = parse_markdown(_doc(row, row.replace("- b", "- c")))
    assert len(entries) == 2
    assert any(
        "line 8: 2501.00001 is listed again on 2025-03-11 (first on line 7)" in r.getMessage()
        for r in caplog.records
    )
