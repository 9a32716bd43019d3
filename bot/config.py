"""Configuration: TOML file + ``PAPERBOT_<SECTION>_<KEY>`` overrides + secrets from the environment.

Every key has a safe default (documented in ``config.example.toml``). Errors name the key
and the file, and are raised as :class:`ConfigError` (one line, never a traceback).
"""

from __future__ import annotations

import os
import re
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import InputError
from bot.labels import LABELS, normalize_label
from bot.suggest import did_you_mean

DEFAULT_CONFIG_FILE = "config.toml"


class ConfigError(InputError):
    """A configuration file or override is invalid."""


def parse_hhmm(value: str) -> time:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
    if not match:
        raise ValueError(f"expected a time as HH:MM (24-hour), got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def _check_time(value: str) -> None:
    parse_hhmm(value)


def _check_zone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'Europe/Berlin')") from exc


def _check_url(value: str) -> None:
    if value and not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"expected an http(s) URL, got {value!r}")


def _choices(*allowed: str) -> Callable[[str], None]:
    def check(value: str) -> None:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")

    return check


def _at_least(minimum: float) -> Callable[[float], None]:
    def check(value: float) -> None:
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")

    return check


def _sources(values: list[str]) -> None:
    for value in values:
        _choices("hf", "arxiv", "digest")(value)


def _tags(values: list[str]) -> None:
    # A feed filter naming no known label would silently match nothing.
    for value in values:
        if normalize_label(value) is None:
            raise ValueError(f"unknown tag {value!r}{did_you_mean(value, LABELS)}")


def key(default, check: Callable | None = None):
    """A config key with a default and an optional validator."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"check": check})
    return field(default=default, metadata={"check": check})


@dataclass
class DatabaseConfig:
    path: str = key("paperbot.db")


@dataclass
class LoggingConfig:
    level: str = key("INFO", _choices("DEBUG", "INFO", "WARNING", "ERROR"))


@dataclass
class SourcesConfig:
    http_timeout: float = key(30.0, _at_least(1))
    http_retries: int = key(3, _at_least(0))
    hf_base_url: str = key("https://huggingface.co", _check_url)
    hf_enrich: bool = key(False)
    arxiv_base_url: str = key("http://export.arxiv.org", _check_url)
    arxiv_categories: list[str] = key(["cs.CL", "cs.CV", "cs.LG", "cs.AI"])
    arxiv_max_results: int = key(200, _at_least(1))


@dataclass
class ScheduleConfig:
    fetch_time: str = key("06:00", _check_time)
    fetch_timezone: str = key("UTC", _check_zone)
    fetch_retry_minutes: int = key(30, _at_least(1))
    fetch_deadline: str = key("22:00", _check_time)
    catchup_hours: int = key(12, _at_least(0))
    misfire_grace_seconds: int = key(3600, _at_least(1))


@dataclass
class DigestConfig:
    max_papers: int = key(25, _at_least(1))
    empty_day: str = key("note", _choices("note", "skip"))


@dataclass
class DiscordConfig:
    command_guild_ids: list[int] = key([])
    owner_ids: list[int] = key([])
    messages_per_second: float = key(48.0, _at_least(0.1))


def _positive_list(values: list[float]) -> None:
    if not values:
        raise ValueError("expected at least one value")
    for value in values:
        _at_least(0.001)(value)


@dataclass
class DeliveryConfig:
    """How digest sends are bounded and retried (see README "Scheduling and delivery")."""

    request_timeout: float = key(30.0, _at_least(0.05))
    send_retry_seconds: list[float] = key([1.0, 2.0, 4.0])
    retry_minutes: list[float] = key([1.0, 2.0, 5.0, 10.0, 30.0], _positive_list)
    deadline_hours: float = key(12.0, _at_least(0))


@dataclass
class LLMConfig:
    base_url: str = key("", _check_url)
    model: str = key("gpt-4o-mini")
    embedding_model: str = key("")
    timeout: float = key(60.0, _at_least(1))
    max_tokens: int = key(800, _at_least(16))
    concurrency: int = key(4, _at_least(1))
    daily_token_budget: int = key(500_000, _at_least(0))
    check_on_start: bool = key(True)


@dataclass
class FeedConfig:
    guild_id: int = key(0, _at_least(1))
    channel_id: int = key(0, _at_least(1))
    name: str = key("")
    post_time: str = key("09:00", _check_time)
    timezone: str = key("UTC", _check_zone)
    sources: list[str] = key(["hf"], _sources)
    layout: str = key("compact", _choices("full", "compact"))
    thread: bool = key(False)
    empty_day: str = key("", _choices("", "note", "skip"))
    include_tags: list[str] = key([], _tags)
    exclude_tags: list[str] = key([], _tags)
    include_keywords: list[str] = key([])
    exclude_keywords: list[str] = key([])
    min_upvotes: int = key(0, _at_least(0))
    max_papers: int = key(0, _at_least(0))  # 0: digest.max_papers
    deadline_hours: float = key(0.0, _at_least(0))  # 0: delivery.deadline_hours


@dataclass
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    feeds: list[FeedConfig] = field(default_factory=list)
    source_file: str | None = None
    discord_token: str | None = field(default=None, repr=False)
    openai_api_key: str | None = field(default=None, repr=False)

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm.base_url or self.openai_api_key)


_SECTIONS: dict[str, type] = {
    "database": DatabaseConfig,
    "logging": LoggingConfig,
    "sources": SourcesConfig,
    "schedule": ScheduleConfig,
    "digest": DigestConfig,
    "discord": DiscordConfig,
    "delivery": DeliveryConfig,
    "llm": LLMConfig,
}


def _type_name(kind: object) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    if typing.get_origin(kind) is list:
        return f"a list of {_type_name(typing.get_args(kind)[0]).split(' ', 1)[1]}s"
    return names.get(kind, str(kind))


def _coerce(kind: object, value: object) -> object:
    """Check ``value`` against ``kind`` (TOML already typed it); raise ValueError if wrong."""
    if typing.get_origin(kind) is list:
        (item_kind,) = typing.get_args(kind)
        if not isinstance(value, list):
            raise ValueError(f"expected {_type_name(kind)}")
        return [_coerce(item_kind, item) for item in value]
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {kind}")


def _from_env_text(kind: object, text: str) -> object:
    """Turn an environment variable's text into the key's type."""
    if typing.get_origin(kind) is list:
        (item_kind,) = typing.get_args(kind)
        items = [part.strip() for part in text.split(",") if part.strip()]
        return [_from_env_text(item_kind, item) for item in items]
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    return text


def _build(cls: type, table: Mapping[str, object], where: str, origin: str) -> object:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    for name in table:
        if name not in known:
            hint = did_you_mean(name, known, limit=1)
            raise ConfigError(f"{origin}: unknown key '{where}.{name}'{hint}")
    values = {}
    for name, spec in known.items():
        if name not in table:
            continue
        try:
            value = _coerce(hints[name], table[name])
            check = spec.metadata.get("check")
            if check is not None:
                check(value)
        except ValueError as exc:
            raise ConfigError(f"{origin}: '{where}.{name}': {exc}") from None
        values[name] = value
    return cls(**values)


# PAPERBOT_* variables that are not config keys (read where they are used).
OTHER_ENV_VARS = ("PAPERBOT_DISCORD_API",)


def env_var_names() -> list[str]:
    """Every ``PAPERBOT_*`` variable paperbot reads."""
    names = [
        f"PAPERBOT_{section.upper()}_{spec.name.upper()}"
        for section, cls in _SECTIONS.items()
        for spec in fields(cls)
    ]
    return [*names, *OTHER_ENV_VARS]


def _check_env_names(environ: Mapping[str, str]) -> None:
    """A mistyped override would be silently ignored: refuse it, with the nearest name."""
    known = env_var_names()
    for name in sorted(environ):
        if name.startswith("PAPERBOT_") and name not in known:
            hint = did_you_mean(name, known, limit=1)
            raise ConfigError(f"unknown environment variable {name}{hint}")


def _apply_env(config: Config, environ: Mapping[str, str]) -> None:
    _check_env_names(environ)
    for section, cls in _SECTIONS.items():
        target = getattr(config, section)
        hints = typing.get_type_hints(cls)
        for spec in fields(cls):
            env_name = f"PAPERBOT_{section.upper()}_{spec.name.upper()}"
            if env_name not in environ:
                continue
            try:
                value = _from_env_text(hints[spec.name], environ[env_name])
                check = spec.metadata.get("check")
                if check is not None:
                    check(value)
            except ValueError as exc:
                raise ConfigError(f"environment variable {env_name}: {exc}") from None
            setattr(target, spec.name, value)


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` (or ``./config.toml`` if present, else defaults) and apply overrides.

    An explicitly named file must exist; the implicit ``config.toml`` is optional.
    """
    environ = os.environ if environ is None else environ
    explicit = path is not None
    file = Path(path if path is not None else DEFAULT_CONFIG_FILE)
    data: dict[str, object] = {}
    origin = str(file)
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{origin}: not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{origin}: cannot read: {exc}") from None
    elif explicit:
        raise ConfigError(f"{origin}: no such config file")

    for secret in ("token", "api_key", "discord_token", "openai_api_key"):
        for section in data.values():
            if isinstance(section, dict) and secret in section:
                raise ConfigError(
                    f"{origin}: secrets do not belong in the config file ('{secret}'); "
                    "set DISCORD_TOKEN / OPENAI_API_KEY in the environment"
                )
    config = Config(source_file=origin if file.exists() else None)
    for name, value in data.items():
        if name == "feeds":
            continue
        if name not in _SECTIONS:
            hint = did_you_mean(name, [*_SECTIONS, "feeds"], limit=1)
            raise ConfigError(f"{origin}: unknown section [{name}]{hint}")
        if not isinstance(value, dict):
            raise ConfigError(f"{origin}: '{name}' must be a table ([{name}])")
        setattr(config, name, _build(_SECTIONS[name], value, name, origin))
    feeds = data.get("feeds", [])
    if not isinstance(feeds, list) or not all(isinstance(item, dict) for item in feeds):
        raise ConfigError(f"{origin}: 'feeds' must be an array of tables ([[feeds]])")
    for index, item in enumerate(feeds):
        feed = _build(FeedConfig, item, f"feeds[{index}]", origin)
        for required in ("guild_id", "channel_id"):
            if required not in item:
                raise ConfigError(f"{origin}: 'feeds[{index}].{required}' is required")
        config.feeds.append(feed)
    _apply_env(config, environ)
    config.discord_token = environ.get("DISCORD_TOKEN") or None
    config.openai_api_key = environ.get("OPENAI_API_KEY") or None
    return config


def iter_keys() -> typing.Iterator[tuple[str, str, object]]:
    """Every documented ``(section, key, default)``; the README and a test use it."""
    for section, cls in {**_SECTIONS, "feeds": FeedConfig}.items():
        for spec in fields(cls):
            default = spec.default if spec.default is not MISSING else spec.default_factory()
            yield section, spec.name, default


__all__ = ["Config", "ConfigError", "FeedConfig", "iter_keys", "load_config", "parse_hhmm"]
