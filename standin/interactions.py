"""INTERACTION_CREATE payloads and the record of how the bot answered each interaction."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import perms as P
from .ratelimit import monotonic
from .state import StoredMessage, World

if TYPE_CHECKING:
    from .server import StandIn

PING = 1
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5

# Callback (response) types
PONG = 1
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

OPTION_SUB_COMMAND = 1
OPTION_SUB_COMMAND_GROUP = 2
OPTION_STRING = 3
OPTION_INTEGER = 4
OPTION_BOOLEAN = 5
OPTION_USER = 6
OPTION_CHANNEL = 7
OPTION_ROLE = 8
OPTION_MENTIONABLE = 9
OPTION_NUMBER = 10
OPTION_ATTACHMENT = 11

ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


class InteractionHandle:
    """One interaction sent to the bot, and everything the bot did in answer to it."""

    def __init__(self, standin: StandIn, payload: dict[str, Any]) -> None:
        self._standin = standin
        self.payload = payload
        self.id = int(payload["id"])
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.guild_id = int(payload["guild_id"]) if payload.get("guild_id") else None
        self.channel_id = int(payload["channel"]["id"])
        user = (payload.get("member") or {}).get("user") or payload.get("user") or {}
        self.user_id = int(user["id"])
        msg = payload.get("message")
        self.message_id = int(msg["id"]) if msg else None
        self.created = monotonic()
        self.callback: dict[str, Any] | None = None
        self.callback_delay: float | None = None
        # Seconds from dispatch to the first message content the user sees: a message
        # callback, or the follow-up / edit that fills a deferred reply.
        self.answered_delay: float | None = None
        self.original: StoredMessage | None = None
        self.followups: list[StoredMessage] = []
        self.rejected: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"<InteractionHandle id={self.id} type={self.type} callback={self.response_type}>"

    @property
    def responded(self) -> bool:
        return self.callback is not None

    @property
    def response_type(self) -> int | None:
        return None if self.callback is None else self.callback.get("type")

    @property
    def response_data(self) -> dict[str, Any]:
        return {} if self.callback is None else dict(self.callback.get("data") or {})

    @property
    def ephemeral(self) -> bool:
        return bool(int(self.response_data.get("flags") or 0) & 64)

    @property
    def choices(self) -> list[dict[str, Any]]:
        """Autocomplete choices of a type-8 answer."""
        return list(self.response_data.get("choices") or [])

    async def wait_callback(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The callback body ``{"type", "data"}`` once the bot has answered."""
        await self._standin.wait_until(lambda: self.callback, timeout, f"callback of {self!r}")
        assert self.callback is not None
        return self.callback

    async def wait_answered(self, timeout: float = 5.0) -> float:  # noqa: ASYNC109
        """Seconds from dispatch until the user saw content (see ``answered_delay``)."""
        await self._standin.wait_until(
            lambda: self.answered_delay is not None, timeout, f"answer to {self!r}"
        )
        assert self.answered_delay is not None
        return self.answered_delay

    async def wait_followups(self, count: int = 1, timeout: float = 5.0) -> list[StoredMessage]:  # noqa: ASYNC109
        """The first ``count`` follow-up messages (a follow-up may fill a deferred reply)."""
        await self._standin.wait_until(
            lambda: len(self.followups) >= count, timeout, f"{count} follow-up(s) to {self!r}"
        )
        return self.followups[:count]

    async def wait_original(self, timeout: float = 5.0) -> StoredMessage:  # noqa: ASYNC109
        """The original response once it holds real content (not a deferred "thinking" state)."""
        await self._standin.wait_until(
            lambda: self.original is not None and not self.original.loading,
            timeout,
            f"original response of {self!r}",
        )
        assert self.original is not None
        return self.original


def _infer_option_type(value: Any) -> int:
    if isinstance(value, bool):
        return OPTION_BOOLEAN
    if isinstance(value, int):
        return OPTION_INTEGER
    if isinstance(value, float):
        return OPTION_NUMBER
    return OPTION_STRING


def _find(options: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    for opt in options:
        if opt.get("name") == name:
            return opt
    return None


def build_options(
    world: World,
    schema: Sequence[Mapping[str, Any]],
    given: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    *,
    focused: str | None,
    guild_id: int | None,
    channel_id: int,
    strict: bool,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Turn ``{"name": value}`` into interaction options plus ``resolved`` data."""
    resolved: dict[str, Any] = {}
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        return [dict(o) for o in given], resolved
    if strict:
        unknown = [n for n in given if _find(schema, n) is None]
        if unknown:
            raise ValueError(f"options {unknown} are not in the synced command")
        if focused is None:
            missing = [o["name"] for o in schema if o.get("required") and o["name"] not in given]
            if missing:
                raise ValueError(f"required options {missing} missing")
    out = []
    for name, value in given.items():
        sch = _find(schema, name)
        otype = int(sch["type"]) if sch else _infer_option_type(value)
        entry: dict[str, Any] = {"name": name, "type": otype}
        if otype in (OPTION_USER, OPTION_CHANNEL, OPTION_ROLE, OPTION_MENTIONABLE):
            target = int(getattr(value, "id", value))
            entry["value"] = str(target)
            _resolve(world, resolved, otype, target, guild_id=guild_id, channel_id=channel_id)
        else:
            entry["value"] = value
            if strict and sch and sch.get("choices") and focused != name:
                allowed = [c["value"] for c in sch["choices"]]
                if value not in allowed:
                    raise ValueError(f"{value!r} is not one of the choices {allowed} of {name!r}")
        if focused == name:
            entry["focused"] = True
        out.append(entry)
    return out, resolved


def _resolve(
    world: World,
    resolved: dict[str, Any],
    otype: int,
    target: int,
    *,
    guild_id: int | None,
    channel_id: int,
) -> None:
    if target in world.users and otype in (OPTION_USER, OPTION_MENTIONABLE):
        resolved.setdefault("users", {})[str(target)] = world.user_payload(target)
        if guild_id is not None and target in world.guild(guild_id).members:
            member = world.member_payload(guild_id, target, with_user=False, channel_id=channel_id)
            resolved.setdefault("members", {})[str(target)] = member
        return
    if otype in (OPTION_ROLE, OPTION_MENTIONABLE) and guild_id is not None:
        role = world.guild(guild_id).roles.get(target)
        if role is not None:
            resolved.setdefault("roles", {})[str(target)] = role.payload()
            return
    if otype == OPTION_CHANNEL and target in world.channels:
        payload = world.channel_payload(target)
        if guild_id is not None:
            payload["permissions"] = str(
                world.permissions(guild_id, world.bot_user.id, target)
                if world.channels[target].guild_id == guild_id
                else 0
            )
        resolved.setdefault("channels", {})[str(target)] = payload
        return
    raise ValueError(f"cannot resolve id {target} for option type {otype}")


def command_data(
    world: World,
    name: str,
    options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    *,
    guild_id: int | None,
    channel_id: int,
    focused: str | None = None,
    command_type: int = 1,
    target_id: int | None = None,
    require_synced: bool = False,
) -> dict[str, Any]:
    """``data`` of an application command / autocomplete interaction.

    ``name`` may hold subcommands: ``"sub add"`` or ``"admin feed remove"``.
    """
    parts = name.split()
    cmd, is_guild = world.find_command(parts[0], guild_id, command_type)
    if cmd is None and require_synced:
        raise LookupError(f"command {parts[0]!r} was never synced to the stand-in")
    data: dict[str, Any] = {
        "id": cmd["id"] if cmd else str(world.snowflakes()),
        "name": parts[0],
        "type": command_type,
    }
    if is_guild:
        data["guild_id"] = str(guild_id)
    schema: Sequence[Mapping[str, Any]] = cmd.get("options", []) if cmd else []
    chain: list[tuple[str, int]] = []
    for i, part in enumerate(parts[1:], start=1):
        sch = _find(schema, part)
        if sch is None and cmd is not None:
            raise ValueError(f"{part!r} is not a subcommand of {' '.join(parts[:i])!r}")
        otype = int(sch["type"]) if sch else (1 if i == len(parts) - 1 else 2)
        chain.append((part, otype))
        schema = sch.get("options", []) if sch else []
    leaf, resolved = build_options(
        world,
        schema,
        options,
        focused=focused,
        guild_id=guild_id,
        channel_id=channel_id,
        strict=cmd is not None,
    )
    nested: list[dict[str, Any]] = leaf
    for part, otype in reversed(chain):
        nested = [{"type": otype, "name": part, "options": nested}]
    if command_type == 1:
        data["options"] = nested
    if target_id is not None:
        data["target_id"] = str(target_id)
        if command_type == 2:
            _resolve(
                world, resolved, OPTION_USER, target_id, guild_id=guild_id, channel_id=channel_id
            )
        elif command_type == 3:
            msg = world.messages[int(target_id)]
            resolved.setdefault("messages", {})[str(target_id)] = world.message_payload(msg)
    if resolved:
        data["resolved"] = resolved
    return data


def modal_submit_data(
    custom_id: str, values: Mapping[str, str], modal: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``data`` of a modal submission, shaped like the modal the bot showed when known."""

    def fill(components: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for comp in components:
            comp = dict(comp)
            if comp.get("type") == 1:
                out.append({"type": 1, "components": fill(comp.get("components") or [])})
            elif comp.get("type") == 18:
                inner = fill([comp["component"]])[0]
                out.append({"type": 18, "id": comp.get("id", 0), "component": inner})
            elif comp.get("type") == 4:
                cid = comp["custom_id"]
                out.append({"type": 4, "custom_id": cid, "value": values.get(cid, "")})
            elif "custom_id" in comp and comp["custom_id"] in values:
                value = values[comp["custom_id"]]
                vals = value if isinstance(value, list) else [value]
                out.append({"type": comp["type"], "custom_id": comp["custom_id"], "values": vals})
        return out

    if modal is not None:
        components = fill(modal.get("components") or [])
    else:
        components = [
            {"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]}
            for k, v in values.items()
        ]
    return {"custom_id": custom_id, "components": components}


def interaction_payload(
    world: World,
    *,
    type: int,
    guild_id: int | None,
    channel_id: int | None,
    user_id: int,
    data: dict[str, Any] | None,
    message: dict[str, Any] | None = None,
    permissions: int | None = None,
    locale: str = "en-US",
) -> dict[str, Any]:
    """A complete INTERACTION_CREATE ``d`` as Discord sends it."""
    payload: dict[str, Any] = {
        "id": str(world.snowflakes()),
        "application_id": str(world.application_id),
        "type": type,
        "token": world.new_token(),
        "version": 1,
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        "locale": locale,
        "entitlements": [],
        "entitlement_sku_ids": [],
    }
    if data is not None:
        payload["data"] = data
    if guild_id is not None:
        if channel_id is None:
            raise ValueError("a guild interaction needs a channel_id")
        guild = world.guild(guild_id)
        if user_id not in guild.members:
            raise ValueError(f"user {user_id} is not a member of guild {guild_id}")
        member = world.member_payload(guild_id, user_id)
        if permissions is None:
            permissions = world.permissions(guild_id, user_id, channel_id)
        member["permissions"] = str(permissions)
        channel = world.channel_payload(channel_id)
        channel["permissions"] = str(permissions)
        payload.update(
            {
                "guild_id": str(guild_id),
                "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
                "guild_locale": "en-US",
                "channel_id": str(channel_id),
                "channel": channel,
                "member": member,
                "app_permissions": str(world.permissions(guild_id, world.bot_user.id, channel_id)),
                "authorizing_integration_owners": {"0": str(guild_id)},
                "context": 0,
            }
        )
    else:
        dm = world.dm_channel_for(user_id)
        dm_perms = (
            P.VIEW_CHANNEL
            | P.SEND_MESSAGES
            | P.EMBED_LINKS
            | P.ATTACH_FILES
            | P.READ_MESSAGE_HISTORY
            | P.ADD_REACTIONS
            | P.USE_EXTERNAL_EMOJIS
        )
        payload.update(
            {
                "channel_id": str(dm.id),
                "channel": world.channel_payload(dm.id),
                "user": world.user_payload(user_id),
                "app_permissions": str(dm_perms),
                "authorizing_integration_owners": {"0": str(world.owner.id)},
                "context": 1,
            }
        )
    if message is not None:
        payload["message"] = copy.deepcopy(message)
    return payload


def interaction_metadata(handle: InteractionHandle, world: World) -> dict[str, Any]:
    """``interaction_metadata`` of a message created in answer to ``handle``."""
    out: dict[str, Any] = {
        "id": str(handle.id),
        "type": handle.type,
        "user": world.user_payload(handle.user_id),
        "authorizing_integration_owners": dict(
            handle.payload.get("authorizing_integration_owners", {})
        ),
    }
    if handle.type == APPLICATION_COMMAND:
        out["name"] = handle.payload.get("data", {}).get("name")
        out["command_type"] = handle.payload.get("data", {}).get("type", 1)
    if handle.message_id is not None:
        out["interacted_message_id"] = str(handle.message_id)
    return out
