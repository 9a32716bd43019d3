"""Configuration: TOML file + ``PAPERBOT_<SECTION>_<KEY>`` overrides + secrets from the environment.

Every key has a safe default (documented in ``config.example.toml``). Errors name the key
and the file, and are raised as :class:`ConfigError` (one line, never a traceback).
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import time
from pathlib import Path
from typing import Annotated, Any
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


class Check:
    """``Annotated`` marker: ``check(value)`` raises ValueError once the type is right.

    The loader turns the annotations into a pydantic-core schema (see :func:`_schema`); the
    dataclasses themselves stay plain, so importing the types costs nothing at start-up.
    """

    def __init__(self, check: Callable[[Any], None]) -> None:
        self.check = check

    def checked(self, value: Any) -> Any:
        self.check(value)
        return value


def _list(default: list) -> Any:
    return field(default_factory=lambda: list(default))


@dataclass
class DatabaseConfig:
    path: str = "paperbot.db"


@dataclass
class LoggingConfig:
    level: Annotated[str, Check(_choices("DEBUG", "INFO", "WARNING", "ERROR"))] = "INFO"


@dataclass
class SourcesConfig:
    http_timeout: Annotated[float, Check(_at_least(1))] = 30.0
    http_retries: Annotated[int, Check(_at_least(0))] = 3
    hf_base_url: Annotated[str, Check(_check_url)] = "https://huggingface.co"
    hf_enrich: bool = False
    arxiv_base_url: Annotated[str, Check(_check_url)] = "http://export.arxiv.org"
    arxiv_categories: list[str] = _list(["cs.CL", "cs.CV", "cs.LG", "cs.AI"])
    arxiv_max_results: Annotated[int, Check(_at_least(1))] = 200


@dataclass
class ScheduleConfig:
    fetch_time: Annotated[str, Check(_check_time)] = "06:00"
    fetch_timezone: Annotated[str, Check(_check_zone)] = "UTC"
    fetch_retry_minutes: Annotated[int, Check(_at_least(1))] = 30
    fetch_deadline: Annotated[str, Check(_check_time)] = "22:00"
    catchup_hours: Annotated[int, Check(_at_least(0))] = 12
    misfire_grace_seconds: Annotated[int, Check(_at_least(1))] = 3600


@dataclass
class DigestConfig:
    max_papers: Annotated[int, Check(_at_least(1))] = 25
    empty_day: Annotated[str, Check(_choices("note", "skip"))] = "note"


@dataclass
class DiscordConfig:
    command_guild_ids: list[int] = _list([])
    owner_ids: list[int] = _list([])
    messages_per_second: Annotated[float, Check(_at_least(0.1))] = 48.0


def _positive_list(values: list[float]) -> None:
    if not values:
        raise ValueError("expected at least one value")
    for value in values:
        _at_least(0.001)(value)


@dataclass
class DeliveryConfig:
    """How digest sends are bounded and retried (see README "Scheduling and delivery")."""

    request_timeout: Annotated[float, Check(_at_least(0.05))] = 30.0
    send_retry_seconds: list[float] = _list([1.0, 2.0, 4.0])
    retry_minutes: Annotated[list[float], Check(_positive_list)] = _list(
        [1.0, 2.0, 5.0, 10.0, 30.0]
    )
    deadline_hours: Annotated[float, Check(_at_least(0))] = 12.0


@dataclass
class LLMConfig:
    base_url: Annotated[str, Check(_check_url)] = ""
    model: str = "gpt-4o-mini"
    embedding_model: str = ""
    timeout: Annotated[float, Check(_at_least(1))] = 60.0
    max_tokens: Annotated[int, Check(_at_least(16))] = 800
    concurrency: Annotated[int, Check(_at_least(1))] = 4
    daily_token_budget: Annotated[int, Check(_at_least(0))] = 500_000
    check_on_start: bool = True


@dataclass
class FeedConfig:
    guild_id: Annotated[int, Check(_at_least(1))] = 0
    channel_id: Annotated[int, Check(_at_least(1))] = 0
    name: str = ""
    post_time: Annotated[str, Check(_check_time)] = "09:00"
    timezone: Annotated[str, Check(_check_zone)] = "UTC"
    sources: Annotated[list[str], Check(_sources)] = _list(["hf"])
    layout: Annotated[str, Check(_choices("full", "compact"))] = "compact"
    thread: bool = False
    empty_day: Annotated[str, Check(_choices("", "note", "skip"))] = ""
    include_tags: Annotated[list[str], Check(_tags)] = _list([])
    exclude_tags: Annotated[list[str], Check(_tags)] = _list([])
    include_keywords: list[str] = _list([])
    exclude_keywords: list[str] = _list([])
    min_upvotes: Annotated[int, Check(_at_least(0))] = 0
    max_papers: Annotated[int, Check(_at_least(0))] = 0  # 0: digest.max_papers
    deadline_hours: Annotated[float, Check(_at_least(0))] = 0.0  # 0: delivery.deadline_hours


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


# pydantic-core's error types, in this file's words ("expected a number, got 'soon'").
_EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
}


def _where(loc: tuple) -> tuple[str, str]:
    """``('feeds', 0, 'timezone', ...)`` -> ``('feeds[0]', 'timezone')``."""
    if loc[0] == "feeds" and len(loc) > 1:
        return f"feeds[{loc[1]}]", str(loc[2]) if len(loc) > 2 else ""
    return str(loc[0]), str(loc[1]) if len(loc) > 1 else ""


def _problem(error: Mapping[str, Any]) -> str:
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    expected = _EXPECTED.get(error["type"])
    if expected is None:
        return str(error["msg"])
    return f"expected {expected}, got {error['input']!r}"


def _file_error(error: Mapping[str, Any], origin: str) -> ConfigError:
    where, name = _where(error["loc"])
    if error["type"] == "extra_forbidden":
        cls = FeedConfig if where.startswith("feeds") else _SECTIONS[where]
        hint = did_you_mean(name, [spec.name for spec in fields(cls)], limit=1)
        return ConfigError(f"{origin}: unknown key '{where}.{name}'{hint}")
    return ConfigError(f"{origin}: '{where}.{name}': {_problem(error)}")


def _schema(kind: Any) -> Any:
    """The pydantic-core schema of one key's annotation (``int``, ``list[str]``, ``Annotated``)."""
    from pydantic_core import core_schema

    if typing.get_origin(kind) is Annotated:
        base, *marks = typing.get_args(kind)
        schema = _schema(base)
        for mark in marks:
            schema = core_schema.no_info_after_validator_function(mark.checked, schema)
        return schema
    if typing.get_origin(kind) is list:
        return core_schema.list_schema(_schema(typing.get_args(kind)[0]))
    scalars = {int: core_schema.int_schema, float: core_schema.float_schema}
    scalars |= {bool: core_schema.bool_schema, str: core_schema.str_schema}
    return scalars[kind]()


def _table(cls: type) -> Any:
    """A section's (or a feed's) schema: its keys, all optional, no others."""
    from pydantic_core import core_schema

    hints = typing.get_type_hints(cls, include_extras=True)
    keys = {
        spec.name: core_schema.typed_dict_field(_schema(hints[spec.name]), required=False)
        for spec in fields(cls)
    }
    return core_schema.typed_dict_schema(keys, extra_behavior="forbid")


@functools.cache
def _file_validator() -> Any:
    """The file's validator, built from the dataclasses' annotations on the first load.

    pydantic-core (the engine under pydantic) directly: it imports in ~20 ms where pydantic's
    models cost ~10x that in import and schema building, which ``paperbot search`` would feel.
    """
    from pydantic_core import SchemaValidator, core_schema

    tables = {
        name: core_schema.typed_dict_field(_table(cls), required=False)
        for name, cls in _SECTIONS.items()
    }
    feeds = core_schema.list_schema(_table(FeedConfig))
    tables["feeds"] = core_schema.typed_dict_field(feeds, required=False)
    return SchemaValidator(core_schema.typed_dict_schema(tables, extra_behavior="forbid"))


def _validate(data: Mapping[str, Any], *, strict: bool) -> Config:
    """Check ``data`` ({section: {key: value}}); the keys given set the dataclasses' fields."""
    parsed = _file_validator().validate_python(data, strict=strict)
    config = Config(feeds=[FeedConfig(**feed) for feed in parsed.pop("feeds", [])])
    for name, values in parsed.items():
        setattr(config, name, _SECTIONS[name](**values))
    return config


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


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The ``PAPERBOT_*`` overrides as ``{section: {key: text}}``, lists split at commas.

    A mistyped name would be silently ignored: it is refused, with the nearest name.
    """
    known = env_var_names()
    for name in sorted(environ):
        if name.startswith("PAPERBOT_") and name not in known:
            hint = did_you_mean(name, known, limit=1)
            raise ConfigError(f"unknown environment variable {name}{hint}")
    found: dict[str, dict[str, Any]] = {}
    for section, cls in _SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for spec in fields(cls):
            text = environ.get(f"PAPERBOT_{section.upper()}_{spec.name.upper()}")
            if text is None:
                continue
            value: Any = text
            if typing.get_origin(hints[spec.name]) is list:
                value = [part.strip() for part in text.split(",") if part.strip()]
            found.setdefault(section, {})[spec.name] = value
    return found


def _read_file(path: str | Path | None) -> tuple[dict[str, Any], str, bool]:
    """The TOML table of ``path`` (or ``./config.toml`` if present), its name, whether it exists.

    An explicitly named file must exist; the implicit ``config.toml`` is optional.
    """
    file = Path(path if path is not None else DEFAULT_CONFIG_FILE)
    origin = str(file)
    if not file.exists():
        if path is not None:
            raise ConfigError(f"{origin}: no such config file")
        return {}, origin, False
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{origin}: cannot read: {exc}") from None
    for secret in ("token", "api_key", "discord_token", "openai_api_key"):
        for section in data.values():
            if isinstance(section, dict) and secret in section:
                raise ConfigError(
                    f"{origin}: secrets do not belong in the config file ('{secret}'); "
                    "set DISCORD_TOKEN / OPENAI_API_KEY in the environment"
                )
    for name, value in data.items():
        if name == "feeds":
            if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                raise ConfigError(f"{origin}: 'feeds' must be an array of tables ([[feeds]])")
        elif name not in _SECTIONS:
            hint = did_you_mean(name, [*_SECTIONS, "feeds"], limit=1)
            raise ConfigError(f"{origin}: unknown section [{name}]{hint}")
        elif not isinstance(value, dict):
            raise ConfigError(f"{origin}: '{name}' must be a table ([{name}])")
    return data, origin, True


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` (or ``./config.toml`` if present, else defaults) and apply overrides.

    pydantic-core checks the file strictly (TOML has types: ``'30'`` is not a number), then the
    ``PAPERBOT_*`` overrides leniently (environment text: ``"30"``, ``"yes"``).
    Secrets come from ``DISCORD_TOKEN`` / ``OPENAI_API_KEY`` only.
    """
    environ = os.environ if environ is None else environ
    data, origin, exists = _read_file(path)
    overrides = _env_overrides(environ)
    config = Config()
    if data or overrides:
        from pydantic_core import ValidationError  # only now: start-up need not load it
    if data:
        try:
            config = _validate(data, strict=True)
        except ValidationError as exc:
            raise _file_error(exc.errors()[0], origin) from None
        for index, item in enumerate(data.get("feeds", [])):
            for required in ("guild_id", "channel_id"):
                if required not in item:
                    raise ConfigError(f"{origin}: 'feeds[{index}].{required}' is required")
    if overrides:
        merged = {**data}
        for section, values in overrides.items():
            merged[section] = {**data.get(section, {}), **values}
        try:
            config = _validate(merged, strict=False)
        except ValidationError as exc:
            error = exc.errors()[0]
            section, name = _where(error["loc"])
            if name not in overrides.get(section, {}):
                raise _file_error(error, origin) from None
            variable = f"PAPERBOT_{section.upper()}_{name.upper()}"
            raise ConfigError(f"environment variable {variable}: {_problem(error)}") from None
    config.source_file = origin if exists else None
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
