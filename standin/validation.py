"""Discord's limits on messages, embeds, components, commands and autocomplete answers.

The stand-in rejects what Discord would reject (400, code 50035 "Invalid Form Body" with the field
path), so the bot's rendering code is checked against the real limits.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import EMPTY_MESSAGE, ApiError, FormErrors

CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBED_TOTAL_MAX = 6000
EMBED_TITLE_MAX = 256
EMBED_DESCRIPTION_MAX = 4096
EMBED_FIELDS_MAX = 25
EMBED_FIELD_NAME_MAX = 256
EMBED_FIELD_VALUE_MAX = 1024
EMBED_FOOTER_MAX = 2048
EMBED_AUTHOR_MAX = 256
ACTION_ROWS_MAX = 5
ROW_ITEMS_MAX = 5
CUSTOM_ID_MAX = 100
BUTTON_LABEL_MAX = 80
CHOICES_MAX = 25
CHOICE_NAME_MAX = 100
COMMANDS_MAX = 100
COMMAND_OPTIONS_MAX = 25
COMMAND_NAME_RE = re.compile(r"^[-_'\w]{1,32}$")
THREAD_NAME_MAX = 100

FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_IS_COMPONENTS_V2 = 1 << 15
SENDABLE_FLAGS = (
    FLAG_SUPPRESS_EMBEDS | FLAG_EPHEMERAL | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_IS_COMPONENTS_V2
)


def _len(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def embed_size(embed: dict[str, Any]) -> int:
    """Characters that count towards the 6000 limit across a message's embeds."""
    total = _len(embed.get("title")) + _len(embed.get("description"))
    total += _len((embed.get("footer") or {}).get("text"))
    total += _len((embed.get("author") or {}).get("name"))
    for field in embed.get("fields") or []:
        total += _len(field.get("name")) + _len(field.get("value"))
    return total


def check_embeds(embeds: Any, errors: FormErrors, prefix: str = "embeds") -> None:
    if embeds is None:
        return
    if not isinstance(embeds, list):
        errors.add(prefix, "MODEL_TYPE_CONVERT", "Only iterables may be used in a ListType.")
        return
    if len(embeds) > EMBEDS_MAX:
        errors.add(prefix, "BASE_TYPE_MAX_LENGTH", f"Must be {EMBEDS_MAX} or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        p = f"{prefix}.{i}"
        if not isinstance(embed, dict):
            errors.add(p, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType.")
            continue
        total += embed_size(embed)
        limits = (
            ("title", embed.get("title"), EMBED_TITLE_MAX),
            ("description", embed.get("description"), EMBED_DESCRIPTION_MAX),
            ("footer.text", (embed.get("footer") or {}).get("text"), EMBED_FOOTER_MAX),
            ("author.name", (embed.get("author") or {}).get("name"), EMBED_AUTHOR_MAX),
        )
        for name, value, limit in limits:
            if _len(value) > limit:
                errors.add(
                    f"{p}.{name}", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."
                )
        fields = embed.get("fields") or []
        if len(fields) > EMBED_FIELDS_MAX:
            errors.add(
                f"{p}.fields",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {EMBED_FIELDS_MAX} or fewer in length.",
            )
        for j, field in enumerate(fields):
            name, value = field.get("name"), field.get("value")
            if not name or not value:
                errors.add(f"{p}.fields.{j}", "BASE_TYPE_REQUIRED", "This field is required")
            if _len(name) > EMBED_FIELD_NAME_MAX:
                errors.add(
                    f"{p}.fields.{j}.name",
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {EMBED_FIELD_NAME_MAX} or fewer in length.",
                )
            if _len(value) > EMBED_FIELD_VALUE_MAX:
                errors.add(
                    f"{p}.fields.{j}.value",
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {EMBED_FIELD_VALUE_MAX} or fewer in length.",
                )
    if total > EMBED_TOTAL_MAX:
        errors.add(prefix, "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def check_components(components: Any, errors: FormErrors, *, v2: bool = False) -> None:
    if components is None:
        return
    if not isinstance(components, list):
        errors.add("components", "MODEL_TYPE_CONVERT", "Only iterables may be used in a ListType.")
        return
    if not v2 and len(components) > ACTION_ROWS_MAX:
        errors.add(
            "components", "BASE_TYPE_MAX_LENGTH", f"Must be {ACTION_ROWS_MAX} or fewer in length."
        )
    seen: set[str] = set()

    def walk(items: list[Any], path: str) -> None:
        for i, comp in enumerate(items):
            p = f"{path}.{i}"
            if not isinstance(comp, dict):
                continue
            if comp.get("type") == 1:
                children = comp.get("components") or []
                if not children:
                    errors.add(f"{p}.components", "BASE_TYPE_MIN_LENGTH", "Must be 1 or more.")
                if len(children) > ROW_ITEMS_MAX:
                    errors.add(
                        f"{p}.components",
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {ROW_ITEMS_MAX} or fewer in length.",
                    )
                walk(children, f"{p}.components")
                continue
            if isinstance(comp.get("components"), list):  # v2 containers and sections
                walk(comp["components"], f"{p}.components")
            custom_id = comp.get("custom_id")
            if custom_id is not None:
                if len(str(custom_id)) > CUSTOM_ID_MAX:
                    errors.add(
                        f"{p}.custom_id",
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {CUSTOM_ID_MAX} or fewer in length.",
                    )
                if custom_id in seen:
                    errors.add(
                        f"{p}.custom_id",
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    )
                seen.add(custom_id)
            if comp.get("type") == 2:
                if _len(comp.get("label")) > BUTTON_LABEL_MAX:
                    errors.add(
                        f"{p}.label",
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {BUTTON_LABEL_MAX} or fewer in length.",
                    )
                if comp.get("style") != 5 and comp.get("style") != 6 and custom_id is None:
                    errors.add(f"{p}.custom_id", "BASE_TYPE_REQUIRED", "This field is required")

    walk(components, "components")


def check_allowed_mentions(am: Any, errors: FormErrors) -> None:
    if am is None:
        return
    if not isinstance(am, dict):
        errors.add("allowed_mentions", "MODEL_TYPE_CONVERT", "Must be an object.")
        return
    parse = am.get("parse") or []
    for kind in ("users", "roles"):
        ids = am.get(kind)
        if ids and kind in parse:
            errors.add(
                f"allowed_mentions.{kind}",
                "MUTUALLY_EXCLUSIVE",
                f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
            )
        if ids and len(ids) > 100:
            errors.add(
                f"allowed_mentions.{kind}",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 100 or fewer in length.",
            )
    for item in parse:
        if item not in ("users", "roles", "everyone"):
            errors.add("allowed_mentions.parse", "BASE_TYPE_CHOICES", f"Value {item!r} is invalid.")


def check_message_body(
    body: dict[str, Any],
    *,
    n_files: int = 0,
    creating: bool = True,
    allow_flags: int = SENDABLE_FLAGS,
) -> None:
    """Validate a create/edit message body; raise ApiError as Discord would."""
    if not isinstance(body, dict):
        raise ApiError(400, 50035, errors={"_errors": [{"code": "DICT_TYPE_CONVERT"}]})
    errors = FormErrors()
    content = body.get("content")
    flags = int(body.get("flags") or 0)
    v2 = bool(flags & FLAG_IS_COMPONENTS_V2)
    if content is not None:
        if not isinstance(content, str):
            content = str(content)
        if len(content) > CONTENT_MAX:
            errors.add(
                "content", "BASE_TYPE_MAX_LENGTH", f"Must be {CONTENT_MAX} or fewer in length."
            )
        if v2 and content:
            errors.add("content", "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2", "...")
    check_embeds(body.get("embeds"), errors)
    check_components(body.get("components"), errors, v2=v2)
    check_allowed_mentions(body.get("allowed_mentions"), errors)
    if flags & ~allow_flags:
        errors.add("flags", "MESSAGE_FLAGS_INVALID", f"Invalid flags {flags & ~allow_flags}")
    errors.raise_if_any()
    if creating:
        has_something = bool(
            (isinstance(content, str) and content.strip())
            or body.get("embeds")
            or body.get("components")
            or body.get("sticker_ids")
            or body.get("poll")
            or n_files
        )
        if not has_something:
            raise ApiError(400, EMPTY_MESSAGE)


def check_autocomplete(data: dict[str, Any]) -> None:
    errors = FormErrors()
    choices = data.get("choices")
    if not isinstance(choices, list):
        errors.add("data.choices", "BASE_TYPE_REQUIRED", "This field is required")
    else:
        if len(choices) > CHOICES_MAX:
            errors.add(
                "data.choices", "BASE_TYPE_MAX_LENGTH", f"Must be {CHOICES_MAX} or fewer in length."
            )
        for i, choice in enumerate(choices):
            name = choice.get("name") if isinstance(choice, dict) else None
            if not isinstance(name, str) or not 1 <= len(name) <= CHOICE_NAME_MAX:
                errors.add(
                    f"data.choices.{i}.name",
                    "BASE_TYPE_BAD_LENGTH",
                    f"Must be between 1 and {CHOICE_NAME_MAX} in length.",
                )
            value = choice.get("value") if isinstance(choice, dict) else None
            if value is None:
                errors.add(
                    f"data.choices.{i}.value", "BASE_TYPE_REQUIRED", "This field is required"
                )
            elif isinstance(value, str) and len(value) > CHOICE_NAME_MAX:
                errors.add(
                    f"data.choices.{i}.value",
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {CHOICE_NAME_MAX} or fewer in length.",
                )
    errors.raise_if_any()


def _check_name(name: Any, path: str, errors: FormErrors, *, chat_input: bool) -> None:
    if not isinstance(name, str) or not COMMAND_NAME_RE.match(name):
        errors.add(path, "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}")
    elif chat_input and name != name.lower():
        errors.add(path, "APPLICATION_COMMAND_INVALID_NAME", "Command name must be lowercase")


def _check_description(desc: Any, path: str, errors: FormErrors) -> None:
    if not isinstance(desc, str) or not 1 <= len(desc) <= 100:
        errors.add(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")


def _check_options(options: list[Any], path: str, errors: FormErrors) -> None:
    if len(options) > COMMAND_OPTIONS_MAX:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {COMMAND_OPTIONS_MAX} or fewer.")
    names: set[str] = set()
    seen_optional = False
    for i, opt in enumerate(options):
        p = f"{path}.{i}"
        _check_name(opt.get("name"), f"{p}.name", errors, chat_input=True)
        _check_description(opt.get("description"), f"{p}.description", errors)
        if opt.get("name") in names:
            errors.add(f"{p}.name", "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Duplicate")
        names.add(opt.get("name"))
        if opt.get("type") in (1, 2):
            _check_options(opt.get("options") or [], f"{p}.options", errors)
            continue
        if opt.get("required"):
            if seen_optional:
                errors.add(
                    f"{p}.required",
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True
        choices = opt.get("choices") or []
        if len(choices) > CHOICES_MAX:
            errors.add(f"{p}.choices", "BASE_TYPE_MAX_LENGTH", f"Must be {CHOICES_MAX} or fewer.")
        if choices and opt.get("autocomplete"):
            errors.add(
                f"{p}.autocomplete",
                "APPLICATION_COMMAND_OPTION_CHOICES_AND_AUTOCOMPLETE",
                "Autocomplete and choices are mutually exclusive",
            )


def check_commands(commands: Any) -> None:
    """Validate a bulk-overwrite body (``PUT .../commands``)."""
    errors = FormErrors()
    if not isinstance(commands, list):
        errors.add("_", "BASE_TYPE_REQUIRED", "Expected a list of commands")
        errors.raise_if_any()
    if sum(1 for c in commands if c.get("type", 1) == 1) > COMMANDS_MAX:
        errors.add("_", "BASE_TYPE_MAX_LENGTH", f"Must be {COMMANDS_MAX} or fewer in length.")
    seen: set[tuple[int, str]] = set()
    for i, cmd in enumerate(commands):
        check_command(cmd, errors, prefix=str(i))
        key = (cmd.get("type", 1), cmd.get("name"))
        if key in seen:
            errors.add(f"{i}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME", "Duplicate name")
        seen.add(key)
    errors.raise_if_any()


def check_command(cmd: dict[str, Any], errors: FormErrors, *, prefix: str = "") -> None:
    p = f"{prefix}." if prefix else ""
    ctype = cmd.get("type", 1)
    _check_name(cmd.get("name"), f"{p}name", errors, chat_input=ctype == 1)
    if ctype == 1:
        _check_description(cmd.get("description"), f"{p}description", errors)
        _check_options(cmd.get("options") or [], f"{p}options", errors)
    elif cmd.get("description"):
        errors.add(f"{p}description", "BASE_TYPE_MAX_LENGTH", "Context menus take no description")
