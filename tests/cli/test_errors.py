"""The command line's error cases, run as a user runs them: ``python -m bot`` in a subprocess."""

from __future__ import annotations

import gzip
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

SEED = FIXTURES / "seed_2025-01-14.md"
CORPUS = FIXTURES / "sources" / "corpus" / "papers_corpus_20.jsonl.gz"
HF_DAY = FIXTURES / "sources" / "hf_daily" / "2024-05-27.json"
ROOT = Path(__file__).resolve().parents[2]


def paperbot(
    *argv: str, cwd: Path, env: dict[str, str] | None = None, shell_pipe: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run paperbot; with ``shell_pipe`` (``"head -1"``) its output goes through that pipe."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOT_")}
    environ["PYTHONPATH"] = str(ROOT)
    environ.update(env or {})
    command = [sys.executable, "-m", "bot", *argv]
    if shell_pipe is not None:
        quoted = " ".join(f"'{part}'" for part in command)
        # PIPESTATUS: the exit code of paperbot itself, not of head.
        script = f'{quoted} | {shell_pipe}; exit "${{PIPESTATUS[0]}}"'
        return subprocess.run(
            ["bash", "-c", script], cwd=cwd, env=environ, capture_output=True, text=True
        )
    return subprocess.run(command, cwd=cwd, env=environ, capture_output=True, text=True)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with the seed day and the 20-line corpus fixture (29 papers)."""
    result = paperbot("--db", "papers.db", "-q", "import", str(SEED), str(CORPUS), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "pipe"),
    [
        (("db", "stats"), "head -2"),
        (("search", "model", "--limit", "20"), "head -1"),
        (("export", "--format", "jsonl"), "head -1"),
        (("export", "--format", "markdown"), "head -1"),
    ],
)
def test_a_closed_pipe_ends_the_command_quietly(store: Path, argv, pipe) -> None:
    # A large export, so that the writes outlast the reader.
    result = paperbot("--db", "papers.db", "-q", *argv, cwd=store, shell_pipe=f"{pipe} >/dev/null")
    assert result.returncode == 0
    assert result.stderr == ""


def test_a_closed_pipe_on_a_large_export_leaves_no_task_error(tmp_path: Path) -> None:
    lines = [CORPUS_LINE.replace("2501.00000", f"2501.{n:05d}") for n in range(3000)]
    big = tmp_path / "big.jsonl.gz"
    with gzip.open(big, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    assert paperbot("--db", "p.db", "-q", "import", str(big), cwd=tmp_path).returncode == 0
    result = paperbot(
        "--db", "p.db", "export", "--format", "jsonl", cwd=tmp_path, shell_pipe="head -1 >/dev/null"
    )
    assert result.returncode == 0
    assert "Task exception" not in result.stderr and "Traceback" not in result.stderr
    assert result.stderr == ""


CORPUS_LINE = (
    '{"id": "2501.00000", "title": "A paper about robots", "authors": ["A. Author"], '
    '"abstract": "We study robots. They move.", "categories": ["cs.RO"], "date": "2025-01-02"}'
)


@pytest.mark.parametrize(
    "argv",
    [
        ("db", "stats"),
        ("db", "backup", "copy.db"),
        ("search", "robots"),
        ("export", "--format", "jsonl"),
        ("digest", "--date", "2025-01-14"),
        ("ask", "what is new?", "--retrieve-only"),
    ],
)
def test_read_only_commands_refuse_a_missing_database(tmp_path: Path, argv) -> None:
    result = paperbot("--db", "data/missing.db", *argv, cwd=tmp_path)
    assert result.returncode == 2
    assert "no database at data/missing.db" in one_line_error(result)
    assert not (tmp_path / "data").exists(), "neither the file nor its folder is created"


def test_global_options_work_after_the_subcommand(store: Path) -> None:
    before = paperbot("--db", "papers.db", "-q", "db", "stats", cwd=store)
    after = paperbot("db", "stats", "--db", "papers.db", "-q", cwd=store)
    assert before.returncode == after.returncode == 0
    assert "papers: 29" in after.stdout and after.stdout == before.stdout
    assert not (store / "paperbot.db").exists(), "--db after the command was not ignored"
    config = store / "other.toml"
    config.write_text('[database]\npath = "papers.db"\n', encoding="utf-8")
    result = paperbot("search", "robot", "--config", str(config), "-q", cwd=store)
    assert result.returncode == 0, result.stderr


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    result = paperbot("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("paperbot ") and result.stdout.split()[1][0].isdigit()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("search", ""), "search needs words"),
        (("search", "  "), "search needs words"),
        (("search", "robot", "--limit", "0"), "--limit: must be at least 1"),
        (("search", "robot", "--limit", "-3"), "--limit"),
        (("search", "robot", "--limit", "ten"), "--limit: expected a whole number"),
    ],
)
def test_empty_queries_and_bad_limits_are_usage_errors(store: Path, argv, message) -> None:
    result = paperbot("--db", "papers.db", *argv, cwd=store)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_filters_alone_still_search(store: Path) -> None:
    result = paperbot("--db", "papers.db", "-q", "search", "--tag", "Robotics", cwd=store)
    assert result.returncode == 0, result.stderr


def test_a_mistyped_environment_variable_gets_a_did_you_mean(store: Path) -> None:
    result = paperbot(
        "db", "stats", cwd=store, env={"PAPERBOT_DATABSE_PATH": str(store / "papers.db")}
    )
    assert result.returncode == 2
    line = one_line_error(result)
    assert "unknown environment variable PAPERBOT_DATABSE_PATH" in line
    assert "did you mean 'PAPERBOT_DATABASE_PATH'?" in line


def test_a_known_environment_variable_still_works(store: Path) -> None:
    result = paperbot(
        "-q", "db", "stats", cwd=store, env={"PAPERBOT_DATABASE_PATH": str(store / "papers.db")}
    )
    assert result.returncode == 0 and "papers: 29" in result.stdout


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[databse]\npath = "x.db"\n', "unknown section [databse] (did you mean 'database'?)"),
        ('[database]\npaht = "x.db"\n', "unknown key 'database.paht' (did you mean 'path'?)"),
        (
            '[[feeds]]\nguild_id = 1\nchannel_id = 2\ninclude_tags = ["Robotcs"]\n',
            "'feeds[0].include_tags': unknown tag 'Robotcs' (did you mean 'Robotics'?)",
        ),
        (
            '[[feeds]]\nguild_id = 1\nchannel_id = 2\nexclude_tags = ["Computer Vison"]\n',
            "unknown tag 'Computer Vison' (did you mean 'Computer Vision'?)",
        ),
    ],
)
def test_config_typos_get_the_same_did_you_mean(tmp_path: Path, toml: str, expected: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(toml, encoding="utf-8")
    result = paperbot("--config", str(config), "db", "migrate", cwd=tmp_path)
    assert result.returncode == 2
    assert expected in one_line_error(result)


def test_feed_tags_in_any_spelling_of_a_label_are_accepted(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[feeds]]\nguild_id = 1\nchannel_id = 2\ninclude_tags = ["computer-vision", "NLP"]\n',
        encoding="utf-8",
    )
    result = paperbot("--config", str(config), "-q", "db", "migrate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_search_suggests_a_tag_the_same_way(store: Path) -> None:
    result = paperbot("--db", "papers.db", "search", "robot", "--tag", "Robotcs", cwd=store)
    assert result.returncode == 2
    assert "unknown tag 'Robotcs' (did you mean 'Robotics'?)" in one_line_error(result)


def test_a_truncated_json_file_is_reported_as_truncated_json(tmp_path: Path) -> None:
    data = HF_DAY.read_bytes()
    cut = tmp_path / "listing.json"  # no date in the name: the day would come from the contents
    cut.write_bytes(data[: len(data) // 2])
    result = paperbot("--db", "p.db", "-q", "import", str(cut), cwd=tmp_path)
    assert result.returncode == 2
    line = one_line_error(result)
    assert f"{cut}: not valid JSON (truncated: " in line
    assert re.search(r"at line \d+ column \d+\); nothing was imported$", line), line
    assert "cannot tell which day" not in line


def test_a_bad_line_late_in_a_file_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    good = [CORPUS_LINE.replace("2501.00000", f"2501.{n:05d}") for n in range(4500)]
    lines = [*good, '{"id": "2502.00001", "title": ', *good[:3]]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert paperbot("--db", "p.db", "-q", "import", str(SEED), cwd=tmp_path).returncode == 0
    result = paperbot("--db", "p.db", "-q", "import", str(corpus), cwd=tmp_path)
    assert result.returncode == 2
    assert "line 4501: not valid JSON" in one_line_error(result)
    stats = paperbot("--db", "p.db", "-q", "db", "stats", cwd=tmp_path)
    assert "papers: 10\n" in stats.stdout, "two batches were written, then rolled back"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("source", "variable"),
    [("hf", "PAPERBOT_SOURCES_HF_BASE_URL"), ("arxiv", "PAPERBOT_SOURCES_ARXIV_BASE_URL")],
)
def test_an_unreachable_source_is_one_line_and_exit_1(tmp_path: Path, source, variable) -> None:
    env = {variable: f"http://127.0.0.1:{_closed_port()}", "PAPERBOT_SOURCES_HTTP_RETRIES": "0"}
    result = paperbot(
        "--db", "p.db", "-q", "fetch", "--date", "2025-01-14", "--source", source,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert "connection error" in one_line_error(result)


def test_run_with_discord_unreachable_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = {
        "PAPERBOT_DISCORD_API": f"http://127.0.0.1:{_closed_port()}",
        "DISCORD_TOKEN": "MTIz.not-a.token",
    }
    result = paperbot("--db", "p.db", "-q", "run", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "cannot reach Discord" in one_line_error(result)


_HEAVY = ("discord", "openai", "tantivy", "numpy", "torch", "sentence_transformers", "aiohttp")


@pytest.mark.parametrize(
    "argv",
    [
        ("--help",),
        ("--db", "papers.db", "-q", "search", "robot"),
        ("--db", "papers.db", "db", "stats"),
    ],
)
def test_commands_that_do_not_need_them_import_no_heavy_package(store: Path, argv) -> None:
    script = (
        "import sys\nfrom bot.cli import main\n"
        f"try:\n    main({list(argv)!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(name for name in {_HEAVY!r} if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=store,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
