"""StandIn: a local Discord (REST + gateway) for running the real discord.py client in tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from . import perms as P
from .errors import STANDIN_INTERNAL, UNAUTHORIZED, ApiError
from .gateway import OP_INVALID_SESSION, OP_RECONNECT, GatewayConnection, Session, gateway_handler
from .interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    InteractionHandle,
    command_data,
    interaction_payload,
    modal_submit_data,
)
from .ratelimit import (
    MESSAGE_BUCKET,
    Fault,
    Window,
    monotonic,
    rate_limit_headers,
    too_many_requests,
)
from .rest import BODY_KEY, FILES_KEY, RestApi, json_response
from .state import FORUM, Channel, Guild, Member, Role, StoredMessage, User, World

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
MESSAGE_ROUTE = "/channels/{channel_id}/messages"
T = TypeVar("T")


@dataclass
class RecordedRequest:
    """One HTTP request the stand-in received and how it answered."""

    method: str
    path: str
    route: str | None
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    files: list[dict[str, Any]] = field(default_factory=list)
    status: int | None = None
    response: Any = None
    response_headers: dict[str, str] = field(default_factory=dict)
    injected: bool = False
    rate_limited: bool = False
    started: float = 0.0
    finished: float | None = None

    @property
    def error_code(self) -> int | None:
        if isinstance(self.response, dict):
            return self.response.get("code")
        return None

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} -> {self.status} code={self.error_code}>"


class StandIn:
    """A Discord stand-in on 127.0.0.1: REST under ``/api/v10`` and the gateway at ``/gateway``.

    Build the world (guilds, channels, roles, members) before the bot connects; the default
    world gives one guild with two text channels, a forum, an admin role and two users.
    Drive it with :meth:`send_interaction` (or :meth:`slash`, :meth:`autocomplete`,
    :meth:`click`) and :meth:`dispatch`; inspect ``requests``, :meth:`messages_in` and the
    returned :class:`InteractionHandle`; break it with :meth:`inject`. See README.md here.
    """

    def __init__(
        self,
        *,
        token: str = "standin-bot-token",
        bot_name: str = "PaperBot",
        default_world: bool = True,
        enforce_limits: bool = False,
        channel_limit: tuple[int, float] = (5, 5.0),
        global_limit: tuple[int, float] = (50, 1.0),
        heartbeat_interval_ms: int = 41_250,
        interaction_deadline: float = 3.0,
        interaction_token_ttl: float = 15 * 60.0,
        echo_messages: bool = True,
        reject_privileged_intents: bool = False,
        full_member_lists: bool = False,
        require_synced_commands: bool = True,
        application_flags: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.world = World(bot_name=bot_name)
        self.enforce_limits = enforce_limits
        self.channel_limit = channel_limit
        self.global_limit = global_limit
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.interaction_deadline = interaction_deadline
        self.interaction_token_ttl = interaction_token_ttl
        self.echo_messages = echo_messages
        self.reject_privileged_intents = reject_privileged_intents
        self.full_member_lists = full_member_lists
        self.require_synced_commands = require_synced_commands
        self.application_flags = application_flags
        self.host = host
        self._port = port

        self.requests: list[RecordedRequest] = []
        self.internal_errors: list[str] = []
        self.faults: list[Fault] = []
        self.identify_payloads: list[dict[str, Any]] = []
        self.gateway_queries: list[dict[str, str]] = []
        self.presence_updates: list[Any] = []
        self.failed_identifies = 0
        self.sessions: dict[str, Session] = {}
        self.connections: list[GatewayConnection] = []
        self.dispatched: list[tuple[str, Any]] = []
        self.dropped_events: list[tuple[str, Any]] = []
        self.interactions: dict[int, InteractionHandle] = {}
        self.interactions_by_token: dict[str, InteractionHandle] = {}
        self.command_syncs: list[dict[str, Any]] = []
        self.deduplicated_nonces = 0
        # Seconds a nonce is remembered (Discord: a few minutes); None: for ever.
        self.nonce_ttl: float | None = 120.0
        self.unavailable_guilds: set[int] = set()  # in an outage (see :meth:`guild_outage`)
        self._released = asyncio.Event()  # set on stop: ends responses held by hanging faults
        self._global_window = Window(*global_limit)
        self._channel_windows: dict[int, Window] = {}
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._rest = RestApi(self)

        self.guild: Guild
        self.text_channel: Channel
        self.other_channel: Channel
        self.forum_channel: Channel
        self.admin_role: Role
        self.admin_user: User
        self.plain_user: User
        if default_world:
            self._build_default_world()

    # ================================================================== world building
    def _build_default_world(self) -> None:
        w = self.world
        self.guild = w.add_guild("Paper Lab", owner_id=w.owner.id)
        self.text_channel = w.add_channel(self.guild.id, "papers")
        self.other_channel = w.add_channel(self.guild.id, "general")
        self.forum_channel = w.add_channel(
            self.guild.id,
            "paper-forum",
            type=FORUM,
            available_tags=[
                {
                    "id": str(w.snowflakes()),
                    "name": "cs.CL",
                    "moderated": False,
                    "emoji_id": None,
                    "emoji_name": None,
                },
            ],
        )
        self.admin_role = w.add_role(self.guild.id, "Admin", permissions=P.MANAGE_GUILD)
        self.admin_user = w.add_user("alice")
        self.plain_user = w.add_user("bob")
        w.add_member(self.guild.id, self.admin_user.id, roles=[self.admin_role.id])
        w.add_member(self.guild.id, self.plain_user.id)

    @property
    def bot_user(self) -> User:
        return self.world.bot_user

    @property
    def application_id(self) -> int:
        return self.world.application_id

    @property
    def everyone_role(self) -> Role:
        return self.guild.everyone_role

    @property
    def bot_role(self) -> Role:
        return self.world.bot_role(self.guild.id)

    def add_user(self, name: str, *, bot: bool = False, id: int | None = None) -> User:
        return self.world.add_user(name, bot=bot, id=id)

    def add_guild(
        self,
        name: str,
        *,
        id: int | None = None,
        owner_id: int | None = None,
        bot_permissions: int = P.DEFAULT_BOT,
    ) -> Guild:
        return self.world.add_guild(name, id=id, owner_id=owner_id, bot_permissions=bot_permissions)

    def add_role(
        self,
        guild_id: int,
        name: str,
        *,
        permissions: int = 0,
        mentionable: bool = False,
        id: int | None = None,
    ) -> Role:
        return self.world.add_role(
            guild_id, name, permissions=permissions, mentionable=mentionable, id=id
        )

    def add_text_channel(
        self,
        guild_id: int,
        name: str,
        *,
        id: int | None = None,
        parent_id: int | None = None,
        topic: str | None = None,
        overwrites: list[dict[str, Any]] | None = None,
    ) -> Channel:
        return self.world.add_channel(
            guild_id, name, id=id, parent_id=parent_id, topic=topic, overwrites=overwrites
        )

    def add_forum_channel(
        self, guild_id: int, name: str, *, id: int | None = None, tags: Sequence[str] = ()
    ) -> Channel:
        available = [
            {
                "id": str(self.world.snowflakes()),
                "name": t,
                "moderated": False,
                "emoji_id": None,
                "emoji_name": None,
            }
            for t in tags
        ]
        return self.world.add_channel(guild_id, name, type=FORUM, id=id, available_tags=available)

    def add_member(
        self, guild_id: int, user_id: int, *, roles: Iterable[int] = (), nick: str | None = None
    ) -> Member:
        return self.world.add_member(guild_id, user_id, roles=list(roles), nick=nick)

    def remove_member(self, guild_id: int, user_id: int) -> Member:
        """Drop a member from the world only (no event); see :meth:`member_leaves`."""
        return self.world.remove_member(guild_id, user_id)

    async def member_leaves(self, guild_id: int, user_id: int) -> int:
        """Remove a member and dispatch GUILD_MEMBER_REMOVE (needs the members intent)."""
        self.world.remove_member(guild_id, user_id)
        return await self.dispatch(
            "GUILD_MEMBER_REMOVE",
            {"guild_id": str(guild_id), "user": self.world.user_payload(user_id)},
        )

    async def delete_role(self, guild_id: int, role_id: int) -> int:
        """Delete a role and dispatch GUILD_ROLE_DELETE."""
        self.world.remove_role(guild_id, role_id)
        return await self.dispatch(
            "GUILD_ROLE_DELETE", {"guild_id": str(guild_id), "role_id": str(role_id)}
        )

    async def delete_channel(self, channel_id: int) -> int:
        """Delete a channel (and its threads) and dispatch CHANNEL_DELETE."""
        payload = self.world.channel_payload(channel_id)
        self.world.remove_channel(channel_id)
        return await self.dispatch("CHANNEL_DELETE", payload)

    async def remove_bot_from(self, guild_id: int) -> int:
        """The bot is kicked from a guild: GUILD_DELETE without ``unavailable`` (a removal,
        not an outage), and the guild is gone from the bot's world."""
        self.world.remove_guild(guild_id)
        return await self.dispatch("GUILD_DELETE", {"id": str(guild_id)})

    async def guild_outage(self, guild_id: int, down: bool = True) -> int:
        """A guild becomes unavailable (GUILD_DELETE with ``unavailable``; on a new connection
        READY lists it as unavailable and no GUILD_CREATE follows) or available again
        (GUILD_CREATE). Nothing is removed from the world."""
        if down:
            self.unavailable_guilds.add(guild_id)
            return await self.dispatch("GUILD_DELETE", {"id": str(guild_id), "unavailable": True})
        self.unavailable_guilds.discard(guild_id)
        return await self.dispatch("GUILD_CREATE", self.world.guild_payload(guild_id))

    def set_overwrite(
        self,
        channel_id: int,
        target_id: int,
        *,
        allow: int = 0,
        deny: int = 0,
        member: bool = False,
    ) -> None:
        self.world.set_overwrite(channel_id, target_id, allow=allow, deny=deny, member=member)

    def close_dms(self, user_id: int, closed: bool = True) -> None:
        """Make POSTs to this user's DM channel answer 403 / 50007."""
        self.world.user(user_id).dms_closed = closed

    def permissions(self, guild_id: int, user_id: int, channel_id: int | None = None) -> int:
        return self.world.permissions(guild_id, user_id, channel_id)

    # ================================================================== lifecycle
    @property
    def port(self) -> int:
        if self._runner is None or not self._runner.addresses:
            raise RuntimeError("StandIn is not started")
        return int(self._runner.addresses[0][1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        return self.url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway"

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        self._auth_routes: set[str] = set()
        for method, path, handler, needs_auth in self._rest.routes():
            app.router.add_route(method, API_PREFIX + path, handler)
            if needs_auth:
                self._auth_routes.add(f"{method} {path}")
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        return app

    async def start(self) -> StandIn:
        if self._runner is not None:
            return self
        self._released.clear()
        self._runner = web.AppRunner(
            self.make_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self._port)
        await self._site.start()
        log.info("Discord stand-in listening on %s", self.url)
        return self

    async def stop(self) -> None:
        self._released.set()
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await conn.close(1001, "stand-in stopping")
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._site = None

    async def __aenter__(self) -> StandIn:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ================================================================== waiting
    def notify(self) -> None:
        """Wake everything waiting in :meth:`wait_until`."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(
        self,
        predicate: Callable[[], T],
        timeout: float = 5.0,  # noqa: ASYNC109
        what: str = "condition",
    ) -> T:
        """Wait until ``predicate()`` is truthy and return it; TimeoutError names ``what``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"stand-in: timed out after {timeout}s waiting for {what}")
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.25))

    # ================================================================== gateway driving
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        return await gateway_handler(self, request)

    def live_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.connection is not None]

    async def wait_for_identify(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The (redacted) IDENTIFY payload of the first client, once it arrives."""
        await self.wait_until(lambda: self.identify_payloads, timeout, "IDENTIFY")
        return self.identify_payloads[-1]

    async def wait_ready(self, timeout: float = 5.0) -> Session:  # noqa: ASYNC109
        """Wait until READY and every GUILD_CREATE went out on a live session."""

        def ready() -> Session | None:
            for s in self.live_sessions():
                if s.ready.is_set():
                    return s
            return None

        return await self.wait_until(ready, timeout, "READY + GUILD_CREATE")

    def requested_privileged_intents(self) -> list[str]:
        """Privileged intents named in any IDENTIFY so far."""
        names: list[str] = []
        for ident in self.identify_payloads:
            for name in P.privileged_names(int(ident.get("intents") or 0)):
                if name not in names:
                    names.append(name)
        return names

    async def dispatch(self, event: str, data: Any, *, respect_intents: bool = True) -> int:
        """Send a DISPATCH to every live session; returns how many received it.

        With ``respect_intents`` an event the session did not subscribe to is dropped (and
        recorded in ``dropped_events``), and message content is blanked without the
        message_content intent, as Discord does.
        """
        sent = 0
        for session in self.live_sessions():
            payload = data
            if respect_intents:
                if not session.wants(event, data):
                    self.dropped_events.append((event, data))
                    continue
                payload = self._filter_content(session, event, data)
            conn = session.connection
            if conn is not None and await conn.dispatch(event, payload):
                sent += 1
        return sent

    def _filter_content(self, session: Session, event: str, data: Any) -> Any:
        if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE") or not isinstance(data, dict):
            return data
        if session.intents & P.INTENT_MESSAGE_CONTENT or data.get("guild_id") is None:
            return data
        bot_id = str(self.bot_user.id)
        if (data.get("author") or {}).get("id") == bot_id:
            return data
        if any(m.get("id") == bot_id for m in data.get("mentions") or []):
            return data
        stripped = dict(data)
        stripped.update({"content": "", "embeds": [], "attachments": [], "components": []})
        return stripped

    async def echo(self, event: str, msg: StoredMessage) -> None:
        """Gateway echo of a message the bot itself created or edited (as Discord does)."""
        self.notify()
        if self.echo_messages and not msg.ephemeral:
            await self.dispatch(event, self.world.message_payload(msg, gateway=True))

    async def send_reconnect(self) -> None:
        """Ask every client to reconnect (op 7); discord.py then RESUMEs."""
        for session in self.live_sessions():
            assert session.connection is not None
            await session.connection.send({"op": OP_RECONNECT, "d": None, "s": None, "t": None})

    async def invalidate_sessions(self, resumable: bool = False) -> None:
        """Send op 9 (INVALID_SESSION); with ``resumable=False`` clients identify afresh."""
        for session in self.live_sessions():
            assert session.connection is not None
            await session.connection.send(
                {"op": OP_INVALID_SESSION, "d": resumable, "s": None, "t": None}
            )
            if not resumable:
                self.sessions.pop(session.id, None)

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every gateway connection with ``code`` (4000 lets the client resume)."""
        for conn in list(self.connections):
            await conn.close(code, "dropped by test")

    # ================================================================== interactions
    async def send_interaction(
        self,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        name: str | None = None,
        options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        type: int = APPLICATION_COMMAND,
        focused: str | None = None,
        custom_id: str | None = None,
        message_id: int | None = None,
        component_type: int = 2,
        values: Sequence[str] | Mapping[str, Any] | None = None,
        command_type: int = 1,
        target_id: int | None = None,
        permissions: int | None = None,
        locale: str = "en-US",
        check_visibility: bool = True,
    ) -> InteractionHandle:
        """Dispatch an INTERACTION_CREATE and return a handle that records the bot's answer.

        - ``type=2`` (slash command): ``name`` may include subcommands (``"sub add"``);
          ``options`` is ``{"option": value}`` (types come from the synced command) or a raw
          list of option dicts.
        - ``type=4`` (autocomplete): as above, ``focused`` names the option being typed.
        - ``type=3`` (component): ``custom_id`` and ``message_id`` of a stored message;
          ``component_type`` (2 button, 3 string select...) and ``values`` for selects.
          ``guild_id``/``channel_id`` may be None: they come from the message.
        - ``type=5`` (modal submit): ``custom_id`` of the modal, ``values`` {input id: text}.

        ``permissions`` overrides the member's computed channel permissions.
        ``guild_id=None`` with no message sends the interaction from the user's DM.

        Discord only lets a user invoke a command they can see: with ``check_visibility`` a
        synced command whose ``default_member_permissions`` the user lacks, or whose
        ``contexts``/``dm_permission`` exclude the place, raises PermissionError here. Pass
        ``check_visibility=False`` to test the bot's own checks.
        """
        w = self.world
        message_payload = None
        if message_id is not None:
            msg = w.messages[int(message_id)]
            message_payload = w.message_payload(msg)
            guild_id = msg.guild_id if guild_id is None else guild_id
            channel_id = msg.channel_id if channel_id is None else channel_id
        if type in (APPLICATION_COMMAND, AUTOCOMPLETE):
            if not name:
                raise ValueError("an application command interaction needs a name")
            cid = channel_id if channel_id is not None else w.dm_channel_for(user_id).id
            if check_visibility:
                self._check_visible(
                    name.split()[0], command_type, guild_id, cid, user_id, permissions
                )
            data: dict[str, Any] = command_data(
                w,
                name,
                options,
                guild_id=guild_id,
                channel_id=cid,
                focused=focused,
                command_type=command_type,
                target_id=target_id,
                require_synced=self.require_synced_commands,
            )
        elif type == MESSAGE_COMPONENT:
            if custom_id is None or message_payload is None:
                raise ValueError("a component interaction needs custom_id and message_id")
            data = {"custom_id": custom_id, "component_type": component_type}
            if values is not None:
                data["values"] = list(values)
        elif type == MODAL_SUBMIT:
            if custom_id is None:
                raise ValueError("a modal submission needs the modal's custom_id")
            data = modal_submit_data(custom_id, dict(values or {}), self._find_modal(custom_id))
        else:
            raise ValueError(f"unsupported interaction type {type}")
        payload = interaction_payload(
            w,
            type=type,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            data=data,
            message=message_payload,
            permissions=permissions,
            locale=locale,
        )
        handle = InteractionHandle(self, payload)
        self.interactions[handle.id] = handle
        self.interactions_by_token[handle.token] = handle
        delivered = await self.dispatch("INTERACTION_CREATE", payload)
        if not delivered:
            raise RuntimeError("no bot is connected to the stand-in gateway")
        return handle

    def _check_visible(
        self,
        name: str,
        command_type: int,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        permissions: int | None,
    ) -> None:
        cmd, _ = self.world.find_command(name, guild_id, command_type)
        if cmd is None:
            return
        contexts = cmd.get("contexts")
        if guild_id is None:
            if cmd.get("dm_permission") is False or (
                isinstance(contexts, list) and 1 not in contexts
            ):
                raise PermissionError(f"/{name} cannot be used in DMs")
            return
        if isinstance(contexts, list) and 0 not in contexts:
            raise PermissionError(f"/{name} cannot be used in guilds")
        needed = cmd.get("default_member_permissions")
        if needed in (None, ""):
            return
        have = permissions
        if have is None:
            have = self.world.permissions(guild_id, user_id, channel_id)
        if have & P.ADMINISTRATOR or have == P.ALL_PERMISSIONS:
            return
        if int(needed) == 0 or have & int(needed) != int(needed):
            raise PermissionError(
                f"user {user_id} cannot see /{name} (needs permissions {int(needed)})"
            )

    def _find_modal(self, custom_id: str) -> dict[str, Any] | None:
        for handle in reversed(list(self.interactions.values())):
            cb = handle.callback
            if (
                cb
                and cb.get("type") == MODAL
                and (cb.get("data") or {}).get("custom_id") == custom_id
            ):
                return cb["data"]
        return None

    async def slash(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user_id: int | None = None,
        channel_id: int | None = None,
        guild_id: int | None = None,
        **kwargs: Any,
    ) -> InteractionHandle:
        """Shortcut: a slash command in the default guild/channel by the plain user."""
        return await self.send_interaction(
            guild_id if guild_id is not None else self.guild.id,
            channel_id if channel_id is not None else self.text_channel.id,
            user_id if user_id is not None else self.plain_user.id,
            name,
            options,
            **kwargs,
        )

    async def autocomplete(
        self,
        name: str,
        options: Mapping[str, Any],
        focused: str,
        *,
        user_id: int | None = None,
        **kwargs: Any,
    ) -> InteractionHandle:
        """Shortcut: an autocomplete request in the default guild/channel."""
        return await self.slash(
            name, options, user_id=user_id, type=AUTOCOMPLETE, focused=focused, **kwargs
        )

    async def click(
        self, message_id: int, custom_id: str, *, user_id: int | None = None, **kwargs: Any
    ) -> InteractionHandle:
        """Shortcut: click a button on a stored message."""
        return await self.send_interaction(
            None,
            None,
            user_id if user_id is not None else self.plain_user.id,
            type=MESSAGE_COMPONENT,
            custom_id=custom_id,
            message_id=message_id,
            **kwargs,
        )

    async def wait_for_callback(self, interaction_id: int, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The callback body ``{"type", "data"}`` the bot sent for an interaction."""
        return await self.interactions[int(interaction_id)].wait_callback(timeout)

    # ================================================================== messages
    def messages_in(
        self, channel_id: int, *, include_ephemeral: bool = False, include_deleted: bool = False
    ) -> list[StoredMessage]:
        """Messages in a channel, oldest first."""
        out = [
            m
            for m in self.world.messages.values()
            if m.channel_id == int(channel_id)
            and (include_ephemeral or not m.ephemeral)
            and (include_deleted or not m.deleted)
        ]
        return sorted(out, key=lambda m: m.id)

    def all_messages(self, *, include_ephemeral: bool = True) -> list[StoredMessage]:
        return sorted(
            (m for m in self.world.messages.values() if include_ephemeral or not m.ephemeral),
            key=lambda m: m.id,
        )

    def message(self, message_id: int) -> StoredMessage:
        return self.world.messages[int(message_id)]

    async def wait_for_messages(
        self,
        channel_id: int,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[StoredMessage]:
        """Wait until ``channel_id`` holds at least ``count`` messages; returns them."""

        def enough() -> list[StoredMessage] | None:
            found = self.messages_in(channel_id)
            return found if len(found) >= count else None

        return await self.wait_until(
            enough,
            timeout,
            f"{count} message(s) in channel {channel_id}",
        )

    def threads_in(self, channel_id: int) -> list[Channel]:
        return [
            c
            for c in self.world.channels.values()
            if c.parent_id == int(channel_id) and c.is_thread
        ]

    async def post_user_message(
        self, channel_id: int, user_id: int, content: str, **body: Any
    ) -> StoredMessage:
        """A user posts a message: stored, then dispatched as MESSAGE_CREATE."""
        channel = self.world.channel(channel_id)
        msg = self.world.new_message(channel, user_id, {"content": content, **body}, via="user")
        await self.dispatch("MESSAGE_CREATE", self.world.message_payload(msg, gateway=True))
        self.notify()
        return msg

    def pinging_messages(self) -> list[StoredMessage]:
        """Every stored message (or edit) that would ping someone."""
        out = []
        for m in self.all_messages():
            pinged = [m.pings, *(e["pings"] for e in m.edits)]
            if any(p["everyone"] or p["users"] or p["roles"] for p in pinged):
                out.append(m)
        return out

    # ================================================================== request log
    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        pattern = re.compile(path_regex)
        return [
            r
            for r in self.requests
            if (method == "*" or r.method == method.upper()) and pattern.search(r.path)
        ]

    def unknown_routes(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.route is None]

    def rate_limit_hits(self) -> list[RecordedRequest]:
        """429s the stand-in produced by enforcing limits (injected ones excluded)."""
        return [r for r in self.requests if r.rate_limited]

    def invalid_requests(self) -> list[RecordedRequest]:
        """401/403/429 answers: Discord bans an IP (Cloudflare) at 10,000 of them in 10 minutes.

        429s with ``X-RateLimit-Scope: shared`` would not count; the stand-in never sends those.
        """
        return [r for r in self.requests if r.status in (401, 403, 429)]

    def unexpected_4xx(self, allow: Iterable[int | tuple[str, str]] = ()) -> list[RecordedRequest]:
        """4xx answers that were neither injected nor rate-limit pacing nor allowed.

        ``allow`` holds Discord error codes (``50007``) or ``(method, path_regex)`` pairs.
        """
        codes = {a for a in allow if isinstance(a, int)}
        pairs = [(m.upper(), re.compile(p)) for a in allow if isinstance(a, tuple) for m, p in [a]]
        out = []
        for r in self.requests:
            if r.status is None or not 400 <= r.status < 500 or r.injected or r.rate_limited:
                continue
            if r.error_code in codes:
                continue
            if any((m in ("*", r.method)) and p.search(r.path) for m, p in pairs):
                continue
            out.append(r)
        return out

    def assert_clean(self, allow: Iterable[int | tuple[str, str]] = ()) -> None:
        """Fail on unknown routes, unexpected 4xx, and stand-in internal errors."""
        allow = list(allow)
        problems = []
        if self.internal_errors:
            problems.append("stand-in internal errors:\n" + "\n".join(self.internal_errors))
        unknown = self.unknown_routes()
        if unknown:
            problems.append(f"unknown routes: {unknown}")
        bad = [r for r in self.unexpected_4xx(allow) if r.route is not None]
        if bad:
            problems.append(
                "unexpected 4xx: " + "; ".join(f"{r!r} {json.dumps(r.response)}" for r in bad)
            )
        if problems:
            raise AssertionError("\n".join(problems))

    # ================================================================== faults
    def inject(
        self,
        method: str,
        path_regex: str,
        status: int | None = None,
        count: int | None = 1,
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
        *,
        delay: float = 0.0,
        is_global: bool = False,
        headers: Mapping[str, str] | None = None,
        land: bool = False,
    ) -> Fault:
        """Answer the next ``count`` matching requests with ``status`` (None: just ``delay``).

        ``land=True`` (with no ``status``): carry the request out (the message is posted), then
        hold its answer for ``delay`` seconds (``math.inf``: until the stand-in stops), as a
        request that hangs after Discord acted on it.

        ``path_regex`` is searched in the path relative to ``/api/v10`` (e.g.
        ``r"^/channels/\\d+/messages$"``). 429 gets Discord's headers and
        ``{"message", "retry_after", "global"}`` body so discord.py waits and retries; 403
        defaults to code 50013; 5xx to ``{"message", "code": 0}`` (502 as an HTML page).
        ``count=None`` keeps the fault forever.
        """
        fault = Fault(
            method=method.upper(),
            path_regex=path_regex,
            status=status,
            count=count,
            retry_after=retry_after,
            body=body,
            delay=delay,
            is_global=is_global,
            headers=dict(headers or {}),
            land=land,
        )
        if land and status is not None:
            raise ValueError("a landed request has no error status")
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def _fault_response(self, fault: Fault) -> web.Response:
        status = fault.status
        assert status is not None
        headers = dict(fault.headers)
        if status == 429:
            rl_headers, body = too_many_requests(
                fault.retry_after if fault.retry_after is not None else 0.05,
                is_global=fault.is_global,
            )
            headers = {**rl_headers, **headers}
            return json_response(fault.body or body, status=429, headers=headers)
        if fault.body is not None:
            return json_response(fault.body, status=status, headers=headers)
        if status == 502:
            return web.Response(
                status=502,
                text="<html><head><title>502 Bad Gateway</title></head></html>",
                content_type="text/html",
                headers=headers,
            )
        defaults = {
            400: (50035, "Invalid Form Body"),
            401: (0, "401: Unauthorized"),
            403: (50013, "Missing Permissions"),
            404: (0, "404: Not Found"),
        }
        code, message = defaults.get(status, (0, f"{status}: Server Error"))
        return json_response({"message": message, "code": code}, status=status, headers=headers)

    # ================================================================== HTTP plumbing
    async def _unknown(self, request: web.Request) -> web.Response:
        return json_response({"message": "404: Not Found", "code": 0}, status=404)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/gateway":
            return await handler(request)
        path = request.path
        rel = path[len(API_PREFIX) :] if path.startswith(API_PREFIX) else path
        resource = request.match_info.route.resource
        canonical = resource.canonical if resource is not None else None
        route = None
        if canonical is not None and canonical.startswith(API_PREFIX):
            route = canonical[len(API_PREFIX) :]
        auth = request.headers.get("Authorization")
        rec = RecordedRequest(
            method=request.method,
            path=rel,
            route=route,
            query=dict(request.query),
            headers={
                "authorization": (
                    None
                    if auth is None
                    else "Bot <valid>"
                    if auth == f"Bot {self.token}"
                    else "<invalid>"
                ),
                "content-type": request.headers.get("Content-Type", ""),
                "user-agent": request.headers.get("User-Agent", ""),
                "x-audit-log-reason": request.headers.get("X-Audit-Log-Reason", ""),
            },
            started=monotonic(),
        )
        self.requests.append(rec)
        try:
            resp = await self._process(request, handler, rec, route)
        except ApiError as exc:
            resp = json_response(exc.body(), status=exc.status)
        except Exception:
            tb = traceback.format_exc()
            log.error("stand-in handler crashed on %s %s\n%s", request.method, rel, tb)
            self.internal_errors.append(f"{request.method} {rel}\n{tb}")
            resp = json_response(ApiError(400, STANDIN_INTERNAL).body(), status=400)
        rec.status = resp.status
        rec.finished = monotonic()
        rec.response_headers = {
            k: v
            for k, v in resp.headers.items()
            if k.lower().startswith("x-ratelimit") or k in ("Retry-After", "Via")
        }
        if isinstance(resp, web.Response) and resp.content_type == "application/json":
            with contextlib.suppress(ValueError, TypeError):
                rec.response = json.loads(resp.body)  # type: ignore[arg-type]
        self.notify()
        return resp

    async def _process(
        self, request: web.Request, handler: Any, rec: RecordedRequest, route: str | None
    ) -> web.StreamResponse:
        hold = 0.0
        for fault in self.faults:
            if fault.matches(request.method, rec.path):
                fault.used += 1
                if fault.land:
                    hold = fault.delay
                    break
                if fault.status is not None:
                    rec.injected = True
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status is not None:
                    return self._fault_response(fault)
                break
        if route is None:
            return await handler(request)
        key = f"{request.method} {route}"
        if key in self._auth_routes and request.headers.get("Authorization") != f"Bot {self.token}":
            raise ApiError(401, UNAUTHORIZED, "401: Unauthorized")
        body, files = await self._read_body(request)
        rec.json = body
        rec.files = [{k: v for k, v in f.items() if k != "data"} for f in files]
        request[BODY_KEY] = body
        request[FILES_KEY] = files
        limit_headers: dict[str, str] = {}
        if self.enforce_limits and key in self._auth_routes:
            limited = self._check_limits(request, route, limit_headers)
            if limited is not None:
                rec.rate_limited = True
                return limited
        resp = await handler(request)
        if limit_headers and 200 <= resp.status < 300:
            resp.headers.update(limit_headers)
        if hold:
            await self._hold(hold)
        return resp

    async def _hold(self, seconds: float) -> None:
        """Wait ``seconds`` (``math.inf``: until :meth:`stop`) before answering."""
        if math.isinf(seconds):
            await self._released.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._released.wait(), seconds)

    def _check_limits(
        self, request: web.Request, route: str, headers: dict[str, str]
    ) -> web.Response | None:
        now = monotonic()
        ok, _, reset_after = self._global_window.hit(now)
        if not ok:
            h, body = too_many_requests(reset_after, is_global=True)
            return json_response(body, status=429, headers=h)
        if request.method == "POST" and route == MESSAGE_ROUTE:
            cid = int(request.match_info["channel_id"])
            window = self._channel_windows.get(cid)
            if window is None:
                window = self._channel_windows[cid] = Window(*self.channel_limit)
            ok, remaining, reset_after = window.hit(now)
            if not ok:
                h, body = too_many_requests(
                    reset_after, limit=self.channel_limit[0], bucket=MESSAGE_BUCKET
                )
                return json_response(body, status=429, headers=h)
            headers.update(
                rate_limit_headers(
                    limit=self.channel_limit[0],
                    remaining=remaining,
                    reset_after=reset_after,
                    bucket=MESSAGE_BUCKET,
                )
            )
        return None

    async def _read_body(self, request: web.Request) -> tuple[Any, list[dict[str, Any]]]:
        if request.method in ("GET", "HEAD") or not request.can_read_body:
            return None, []
        if request.content_type.startswith("multipart/"):
            payload: Any = None
            files: list[dict[str, Any]] = []
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, aiohttp.BodyPartReader):  # nested multipart: skip
                    continue
                if part.name == "payload_json":
                    text = await part.text()
                    try:
                        payload = json.loads(text)
                    except ValueError:
                        raise ApiError(400, 50109) from None
                else:
                    data = await part.read()
                    files.append(
                        {
                            "field": part.name,
                            "filename": part.filename,
                            "size": len(data),
                            "content_type": part.headers.get("Content-Type"),
                            "data": bytes(data),
                        }
                    )
            return payload, files
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError:
            raise ApiError(400, 50109) from None


@contextlib.asynccontextmanager
async def running_standin(**kwargs: Any) -> AsyncIterator[StandIn]:
    """``async with running_standin() as standin:`` starts it and stops it afterwards."""
    standin = StandIn(**kwargs)
    await standin.start()
    try:
        yield standin
    finally:
        await standin.stop()
