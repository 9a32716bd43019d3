"""``paperbot import`` / ``export`` of digest archives, run as a user runs them (a subprocess)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from bot.sources.markdown import HEADER, SEPARATOR
from tests.conftest import FIXTURES
from tests.digest_archive import make_archive

SEED = FIXTURES / "seed_2025-01-14.md"
DIGESTS = FIXTURES / "sources" / "digests"


def paperbot(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PAPERBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", "-q", "--db", "store.db", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
        check=False,
    )


def papers(cwd: Path) -> int:
    if not (cwd / "store.db").exists():
        return 0
    with sqlite3.connect(cwd / "store.db") as conn:
        return conn.execute("SELECT count(*) FROM papers").fetchone()[0]


def broken_day(path: Path) -> Path:
    path.write_text(
        f"\n\n## Papers for 2025-03-12\n\n{HEADER}\n{SEPARATOR}\n"
        "| [T](https://arxiv.org/abs/2503.00001) | A | - b | ['X'] |\n",
        encoding="utf-8",
    )
    return path


def test_one_bad_file_imports_nothing_and_says_so(tmp_path: Path) -> None:
    bad = broken_day(tmp_path / "bad.md")
    done = paperbot(tmp_path, "import", str(SEED), str(DIGESTS / "2024-09-27.md"), str(bad))
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("paperbot: error: ")
    assert "bad.md: line 7: expected 6 cells" in line
    assert line.endswith("nothing was imported (--keep-going imports the other 2)")
    assert papers(tmp_path) == 0


def test_markdown_with_no_digest_day_is_refused_not_imported_as_nothing(tmp_path: Path) -> None:
    prose = tmp_path / "README.md"
    prose.write_text(
        "# Data\n\n- **Digest table**: `## Papers for YYYY-MM-DD`, then `| Title | Authors |`\n",
        encoding="utf-8",
    )
    done = paperbot(tmp_path, "import", str(prose))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "README.md: no digest day in it (expected '## Papers for YYYY-MM-DD' sections)" in line
    assert line.endswith("nothing was imported")
    assert papers(tmp_path) == 0


def test_keep_going_imports_the_good_files_and_lists_the_bad_ones(tmp_path: Path) -> None:
    bad = broken_day(tmp_path / "bad.md")
    missing = tmp_path / "missing.md"
    done = paperbot(
        tmp_path,
        "import",
        "--keep-going",
        str(SEED),
        str(bad),
        str(missing),
        str(DIGESTS / "2025-03-11_5_rows.md"),
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{SEED}: 10 records, 10 new papers, 0 updated, 1 days (2025-01-14..2025-01-14)",
        f"{DIGESTS / '2025-03-11_5_rows.md'}: 5 records, 5 new papers, 0 updated, "
        "1 days (2025-03-11..2025-03-11)",
    ]
    errors = done.stderr.strip().splitlines()
    assert errors[0].startswith(f"paperbot: not imported: {bad}: line 7: expected 6 cells")
    assert errors[1].startswith(f"paperbot: not imported: {missing}: cannot read")
    assert errors[2] == (
        "paperbot: error: 2 of 4 files could not be imported (listed above); "
        "the other 2 were imported"
    )
    assert len(errors) == 3
    assert papers(tmp_path) == 15


def test_keep_going_with_only_good_files_exits_0(tmp_path: Path) -> None:
    done = paperbot(tmp_path, "import", "--keep-going", str(DIGESTS / "2025-09-26.md"), str(SEED))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines()[0].endswith(
        "0 records, 0 new papers, 0 updated, 1 days (2025-09-26..2025-09-26)"
    )


def test_every_fixture_day_round_trips_through_the_command_line(tmp_path: Path) -> None:
    days = {
        "2024-09-27": DIGESTS / "2024-09-27.md",
        "2024-10-15": DIGESTS / "2024-10-15_4_rows.md",
        "2025-03-11": DIGESTS / "2025-03-11_5_rows.md",
        "2025-09-26": DIGESTS / "2025-09-26.md",
        "2025-01-14": SEED,
    }
    done = paperbot(tmp_path, "import", *map(str, days.values()))
    assert done.returncode == 0, done.stderr
    for day, path in days.items():
        exported = paperbot(tmp_path, "export", "--date", day, "--output", f"{day}.md")
        assert exported.returncode == 0, exported.stderr
        written = (tmp_path / f"{day}.md").read_bytes()
        expected = path.read_bytes().replace("TransformerÂ²".encode(), "Transformer²".encode())
        assert written == expected, day


def test_a_generated_many_day_readme_imports_completely_and_exports_each_day(tmp_path: Path):
    text, sections = make_archive()
    (tmp_path / "README.md").write_text(text, encoding="utf-8")
    done = paperbot(tmp_path, "import", "README.md")
    assert done.returncode == 0, done.stderr
    rows = sum(section.count("\n| [") for section in sections.values())
    assert done.stdout == (
        f"README.md: {rows} records, {rows} new papers, 0 updated, "
        f"263 days ({min(sections)}..{max(sections)})\n"
    )
    exported = paperbot(tmp_path, "export", "--format", "markdown")
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == "".join(sections[day] for day in sorted(sections))
