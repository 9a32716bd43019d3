"""Hold a model's answer to the papers it was given, before anyone reads it.

Small local models invent arXiv ids, authors and titles, and copy the prompt's own markers
(``<paper id="6">``, ``Question:``). :func:`ground` keeps only what can be traced to the papers
actually sent: ``[n]`` citations are mapped to those papers (numbers that were not sent are
removed), a known arXiv id becomes its ``[n]``, prompt echoes are removed, and a sentence that
names a paper, author or quoted title that was not sent is dropped whole (its claim is about
something the bot cannot show). What is left is *grounded* only if it still cites a paper.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.models import Paper

# Lines a model copies from the prompt (the field labels of a paper block, the question).
_ECHO_LINE_RE = re.compile(
    r"^\s*(?:[-*>]\s*)?(?:Papers|Question|Title|arXiv|Published|Authors|Summary|Abstract)\s*:.*$",
    re.I | re.M,
)
_INLINE_QUESTION_RE = re.compile(r"\bQuestion\s*:[^\n?]*\??[ \t]*")
_GONE = "\x00"  # marks a line removed whole (not a blank line of the answer)
_HAS_CITATION_RE = re.compile(r"\[\s*\d{1,3}\s*\]")
_MARKER_RE = re.compile(r"<\s*/?\s*paper\b[^>\n]*>?", re.I)
_ID_CITATION_RE = re.compile(r"\[\s*arXiv\s*:\s*([^\]\s]+)\s*\]", re.I)
_CITATION_RE = re.compile(
    r"\[\s*(?:(?:papers?|refs?|sources?)\s*)?(\d{1,3}(?:\s*(?:,|;|-|–|and)\s*\d{1,3})*)\s*\]"
    r"(?:\(\s*<?https?://[^)\s]*>?\s*\))?",
    re.I,
)
# An arXiv id written out: "arXiv:2501.06425", "arXiv 2406.12345v2", a link, or a bare id.
_ARXIV_ID_RE = re.compile(
    r"(?:https?://(?:www\.)?arxiv\.org/(?:abs|pdf)/|\barXiv\s*[:\s]\s*)?"
    r"\b(\d{4}\.\d{4,5}|[a-z][a-z.-]+/\d{7})(?:v\d+)?\b(?:\.pdf)?",
    re.I,
)
_ET_AL_RE = re.compile(r"\b([A-Z][A-Za-z'\-]+)\s+et\s+al\b")
_QUOTED_RE = re.compile(r"[\"“”]([^\"“”\n]{8,200})[\"“”]|\*([^*\n]{8,200})\*")
_END_RE = re.compile(r"[.!?]+(?:\s*\[\d{1,3}(?:\s*[,;-]\s*\d{1,3})*\])*(?=\s|$)")
_ABBREVIATIONS = frozenset({"al", "e.g", "i.e", "fig", "eq", "vs", "etc", "dr", "no", "cf", "sec"})
_WORD_RE = re.compile(r"[a-z0-9]+")
_PAREN_CITATION_RE = re.compile(r"\(\s*((?:\[\d{1,3}\]\s*)+)\)")


@dataclass(frozen=True, slots=True)
class Grounded:
    """The checked text, the papers it cites (1-based numbers, in order) and what was removed."""

    body: str
    cited: list[int] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # one short reason per removal

    @property
    def grounded(self) -> bool:
        return bool(self.cited)


def _words(text: str) -> str:
    return " ".join(_WORD_RE.findall(text.lower()))


def _numbers(spec: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*(?:,|;|and)\s*", spec):
        bounds = re.split(r"\s*[-–]\s*", part)
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            low, high = int(bounds[0]), int(bounds[1])
            if 0 < high - low <= 10:
                numbers.extend(range(low, high + 1))
                continue
        numbers.extend(int(b) for b in bounds if b.isdigit())
    return numbers


class _Evidence:
    """What the papers sent to the model let an answer name."""

    def __init__(self, papers: Sequence[Paper]) -> None:
        self.count = len(papers)
        self.numbers = {paper.arxiv_id.lower(): n for n, paper in enumerate(papers, start=1)}
        self.surnames = {
            name.split()[-1].lower() for paper in papers for name in paper.authors if name.split()
        }
        self.text = " \n ".join(
            _words(" ".join((paper.title, paper.abstract, *paper.bullets))) for paper in papers
        )

    def number(self, arxiv_id: str) -> int | None:
        return self.numbers.get(arxiv_id.lower())

    def knows_quote(self, quote: str) -> bool:
        words = _words(quote)
        return not words or words in self.text


def _title_like(text: str) -> bool:
    words = [w for w in re.findall(r"[A-Za-z][\w'-]*", text) if len(w) > 3]
    return len(words) >= 2 and sum(w[0].isupper() for w in words) >= 0.6 * len(words)


def _check_sentence(
    sentence: str, evidence: _Evidence, cited: list[int], removed: list[str]
) -> str:
    """The sentence with ids and citations mapped to ``[n]``, or ``""`` if it must go."""

    def arxiv_id(match: re.Match[str]) -> str:
        number = evidence.number(match.group(1))
        if number is None:
            raise _Invented(f"arXiv id {match.group(1)} was not among the papers")
        return f"[{number}]"

    bad: list[str] = []

    def citation(match: re.Match[str]) -> str:
        numbers = list(dict.fromkeys(_numbers(match.group(1))))
        keep = [n for n in numbers if 1 <= n <= evidence.count]
        if len(keep) < len(numbers):
            bad.append(match.group(1))
        return "".join(f"[{n}]" for n in keep)

    try:
        for match in _ET_AL_RE.finditer(sentence):
            if match.group(1).lower() not in evidence.surnames:
                raise _Invented(f"author {match.group(1)} et al. is not among the papers")
        for match in _QUOTED_RE.finditer(sentence):
            quote = match.group(1) or match.group(2)
            if _title_like(quote) and not evidence.knows_quote(quote):
                raise _Invented(f"title “{quote[:60]}” is not among the papers")
        text = _ID_CITATION_RE.sub(arxiv_id, sentence)
        text = _ARXIV_ID_RE.sub(arxiv_id, text)
        text = _CITATION_RE.sub(citation, text)
        if bad and not re.search(r"\[\d{1,3}\]", text):
            raise _Invented(f"cites only [{'], ['.join(bad)}], not sent")
        if bad:
            removed.append(f"removed citations [{'], ['.join(bad)}] of papers not sent")
        text = _PAREN_CITATION_RE.sub(r"\1", text)
    except _Invented as exc:
        removed.append(f"dropped a sentence: {exc}")
        return ""
    for number in (int(n) for n in re.findall(r"\[(\d{1,3})\]", text)):
        if number not in cited:
            cited.append(number)
    return text


class _Invented(Exception):
    pass


def split_sentences(line: str) -> list[str]:
    """``line`` cut after each ``.``, ``!`` or ``?`` that ends a sentence; initials and
    abbreviations (``J. Doe``, ``et al.``, ``e.g.``) do not end one, and trailing citations
    (``... cache. [1]``) stay with the sentence before them."""
    pieces: list[str] = []
    start = 0
    for match in _END_RE.finditer(line):
        before = re.search(r"([A-Za-z.]+)$", line[start : match.start()])
        word = before.group(1).lower() if before else ""
        if (len(word) == 1 and word.isalpha()) or word in _ABBREVIATIONS:
            continue
        pieces.append(line[start : match.end()])
        start = match.end()
    if start < len(line):
        pieces.append(line[start:])
    return [piece for piece in pieces if piece]


def ground(text: str, papers: Sequence[Paper]) -> Grounded:
    """Check ``text`` against ``papers`` (numbered from 1, as in the prompt)."""
    evidence = _Evidence(papers)
    removed: list[str] = []
    body = text
    if _MARKER_RE.search(body):
        removed.append("removed copies of the prompt's <paper> markers")
        body = _MARKER_RE.sub("", body)
    echoed = 0

    def echo(match: re.Match[str]) -> str:
        # A copied prompt line carries no citation; "Summary: ... [1]" is the model's own.
        nonlocal echoed
        if _HAS_CITATION_RE.search(match.group(0)):
            return match.group(0)
        echoed += 1
        return _GONE

    body = _ECHO_LINE_RE.sub(echo, body)
    body, inline = _INLINE_QUESTION_RE.subn("", body)
    if echoed or inline:
        removed.append(f"removed {echoed + inline} line(s) copied from the prompt")
    cited: list[int] = []
    lines: list[str] = []
    for line in body.split("\n"):
        if line.strip() == _GONE:
            continue
        line = line.replace(_GONE, "")
        if not line.strip():
            lines.append("")
            continue
        kept = [_check_sentence(s, evidence, cited, removed) for s in split_sentences(line)]
        joined = "".join(kept).rstrip()
        if joined.strip() and re.search(r"\w", joined):
            lines.append(joined)
        elif not any(kept):
            continue  # the whole line went
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return Grounded(body, cited, removed)


def cut_at_sentence(text: str) -> str:
    """``text`` up to the end of its last complete sentence (or line), for a reply cut by
    ``max_tokens``; the whole text if no sentence ends in it."""
    ends = [m.end() for m in re.finditer(r"[.!?](?:\s*\[\d{1,3}\])*(?=\s|$)|\n", text)]
    if not ends:
        return text
    return text[: ends[-1]].rstrip()


__all__ = ["Grounded", "cut_at_sentence", "ground", "split_sentences"]
