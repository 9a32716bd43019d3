"""The real ``paperbot run`` entry point in a subprocess against the Discord stand-in."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.conftest import FIXTURES
from tests.discord_standin import StandIn
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


async def run_cli(*argv: str, env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *argv,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_paperbot_run_connects_syncs_posts_and_stops_cleanly_on_sigint(
    discord_standin: StandIn, tmp_path: Path
):
    standin = discord_standin
    config = tmp_path / "config.toml"
    config.write_text(
        "[discord]\n"
        f"command_guild_ids = [{standin.guild.id}]\n"
        "[[feeds]]\n"
        f"guild_id = {standin.guild.id}\n"
        f"channel_id = {standin.text_channel.id}\n"
        'sources = ["digest"]\n',
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PAPERBOT_DISCORD_API": standin.url,
        "DISCORD_TOKEN": standin.token,
    }
    importer = await run_cli("import", str(FIXTURES / "seed_2025-01-14.md"), env=env, cwd=tmp_path)
    assert await importer.wait() == 0

    process = await run_cli("--config", str(config), "run", "--sync", env=env, cwd=tmp_path)
    try:
        # A loaded machine can take long to import and log in: the limits only stop a hang.
        identify = await standin.wait_for_identify(timeout=120)
        assert identify["intents"] & (1 << 1 | 1 << 8 | 1 << 15) == 0  # no privileged ones
        synced = await wait_until(
            lambda: standin.requests_to("PUT", rf"/guilds/{standin.guild.id}/commands$"),
            limit=120,
            what="the command sync",
        )
        assert "digest" in {command["name"] for command in synced[0].json}
        process.send_signal(signal.SIGINT)
        _stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = stderr.decode()
    assert process.returncode == 0, log
    assert "shutting down" in log and "Traceback" not in log
    assert standin.token not in log, "the token never reaches the logs"
    assert (tmp_path / "paperbot.db").exists()


async def test_paperbot_run_without_a_token_explains_what_to_do(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    process = await run_cli("run", env=env, cwd=tmp_path)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 2
    assert "DISCORD_TOKEN is not set" in stderr.decode()
