import re
from pathlib import Path

import pytest

from bot.config import ConfigError, iter_keys, load_config

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads_and_matches_the_defaults():
    loaded = load_config(ROOT / "config.example.toml", environ={})
    assert loaded.database.path == "paperbot.db"
    assert loaded.feeds == []
    assert not loaded.llm_enabled


def test_every_key_is_documented_in_the_example_and_the_readme():
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for section, name, _default in iter_keys():
        assert re.search(rf"^#? ?{name} = ", example, re.M), f"{section}.{name} not in example"
        assert f"`{section}.{name}`" in readme, f"{section}.{name} not in README"


def test_wrong_type_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, "[sources]\nhttp_timeout = 'soon'\n")
    with pytest.raises(
        ConfigError, match=r"config\.toml: 'sources\.http_timeout': expected a number"
    ):
        load_config(path, environ={})


def test_unknown_key_is_reported_with_a_suggestion(tmp_path):
    path = write(tmp_path, "[database]\npaht = 'x.db'\n")
    with pytest.raises(ConfigError, match=r"unknown key 'database\.paht'"):
        load_config(path, environ={})


def test_bad_time_zone_and_time_in_a_feed(tmp_path):
    path = write(tmp_path, "[[feeds]]\nguild_id = 1\nchannel_id = 2\ntimezone = 'Mars/Olympus'\n")
    with pytest.raises(ConfigError, match=r"'feeds\[0\]\.timezone': unknown IANA time zone"):
        load_config(path, environ={})
    path = write(tmp_path, "[[feeds]]\nguild_id = 1\nchannel_id = 2\npost_time = '25:00'\n")
    with pytest.raises(ConfigError, match=r"HH:MM"):
        load_config(path, environ={})


def test_feed_requires_guild_and_channel(tmp_path):
    path = write(tmp_path, "[[feeds]]\nguild_id = 1\n")
    with pytest.raises(ConfigError, match=r"'feeds\[0\]\.channel_id' is required"):
        load_config(path, environ={})


def test_invalid_toml_is_one_clear_error(tmp_path):
    path = write(tmp_path, "[database\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, environ={})


def test_secrets_in_the_file_are_refused(tmp_path):
    path = write(tmp_path, "[llm]\napi_key = 'sk-123'\n")
    with pytest.raises(ConfigError, match="secrets do not belong"):
        load_config(path, environ={})


def test_environment_overrides_and_secrets(tmp_path):
    path = write(tmp_path, "[database]\npath = 'file.db'\n")
    config = load_config(
        path,
        environ={
            "PAPERBOT_DATABASE_PATH": "env.db",
            "PAPERBOT_SOURCES_ARXIV_CATEGORIES": "cs.CL, cs.RO",
            "PAPERBOT_SOURCES_HF_ENRICH": "yes",
            "DISCORD_TOKEN": "secret-token",
            "OPENAI_API_KEY": "sk-secret",
        },
    )
    assert config.database.path == "env.db"
    assert config.sources.arxiv_categories == ["cs.CL", "cs.RO"]
    assert config.sources.hf_enrich is True
    assert config.discord_token == "secret-token" and config.llm_enabled
    assert "secret" not in repr(config)


def test_bad_environment_override_names_the_variable():
    with pytest.raises(ConfigError, match="PAPERBOT_SOURCES_HTTP_RETRIES: expected an integer"):
        load_config(None, environ={"PAPERBOT_SOURCES_HTTP_RETRIES": "many"})


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml", environ={})


def test_a_misspelt_section_gets_a_did_you_mean(tmp_path):
    path = write(tmp_path, "[databse]\npath = 'x.db'\n")
    with pytest.raises(
        ConfigError, match=r"unknown section \[databse\] \(did you mean 'database'\?\)"
    ):
        load_config(path, environ={})


def test_an_unknown_tag_in_a_feed_filter_gets_a_did_you_mean(tmp_path):
    path = write(tmp_path, "[[feeds]]\nguild_id = 1\nchannel_id = 2\ninclude_tags = ['Robotcs']\n")
    with pytest.raises(ConfigError, match=r"feeds\[0\]\.include_tags.*did you mean 'Robotics'\?"):
        load_config(path, environ={})


def test_the_file_is_strict_where_the_environment_is_lax(tmp_path):
    """A TOML file has types, so a quoted number is a mistake; an environment value is text."""
    path = write(tmp_path, "[sources]\nhttp_retries = '3'\n")
    with pytest.raises(ConfigError, match=r"'sources\.http_retries': expected an integer"):
        load_config(path, environ={})
    config = load_config(None, environ={"PAPERBOT_SOURCES_HTTP_RETRIES": "3"})
    assert config.sources.http_retries == 3
