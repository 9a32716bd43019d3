"""REST handlers: the subset of Discord's HTTP API that discord.py and the bot use."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import perms as P
from . import validation as V
from .errors import (
    ALREADY_ACKNOWLEDGED,
    CANNOT_EDIT_OTHERS_MESSAGE,
    CANNOT_SEND_TO_USER,
    INVALID_FORM_BODY,
    MISSING_ACCESS,
    MISSING_PERMISSIONS,
    NON_TEXT_CHANNEL,
    THREAD_ARCHIVED,
    UNKNOWN_COMMAND,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    ApiError,
    FormErrors,
)
from .interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    UPDATE_MESSAGE,
    InteractionHandle,
    interaction_metadata,
)
from .ratelimit import monotonic
from .state import (
    ANNOUNCEMENT,
    DM,
    FORUM,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    TEXT,
    Channel,
    StoredMessage,
)

if TYPE_CHECKING:
    from .server import StandIn

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Where the middleware leaves the parsed body for the handlers.
if hasattr(web, "RequestKey"):  # aiohttp >= 3.12
    BODY_KEY: Any = web.RequestKey("standin_body", object)
    FILES_KEY: Any = web.RequestKey("standin_files", list)
else:  # pragma: no cover
    BODY_KEY = "standin_body"
    FILES_KEY = "standin_files"


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer with ``Content-Type: application/json`` exactly (no charset suffix)."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def no_content() -> web.Response:
    return web.Response(status=204)


def _truthy(value: str | None) -> bool:
    return str(value).lower() in ("1", "true", "yes")


class RestApi:
    """Handlers bound to a StandIn. ``routes()`` lists (method, path, handler, needs_bot_auth)."""

    def __init__(self, standin: StandIn) -> None:
        self.s = standin
        self.w = standin.world

    def routes(self) -> list[tuple[str, str, Handler, bool]]:
        r = [
            ("GET", "/gateway", self.get_gateway, False),
            ("GET", "/gateway/bot", self.get_gateway_bot, True),
            ("GET", "/users/@me", self.get_me, True),
            ("POST", "/users/@me/channels", self.create_dm, True),
            ("GET", "/users/{user_id}", self.get_user, True),
            ("GET", "/oauth2/applications/@me", self.get_application, True),
            ("GET", "/applications/@me", self.get_application, True),
            ("GET", "/applications/{app_id}/commands", self.list_commands, True),
            ("PUT", "/applications/{app_id}/commands", self.put_commands, True),
            ("POST", "/applications/{app_id}/commands", self.upsert_command, True),
            ("GET", "/applications/{app_id}/commands/{command_id}", self.get_command, True),
            ("PATCH", "/applications/{app_id}/commands/{command_id}", self.edit_command, True),
            ("DELETE", "/applications/{app_id}/commands/{command_id}", self.delete_command, True),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands", self.list_commands, True),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self.put_commands, True),
            (
                "POST",
                "/applications/{app_id}/guilds/{guild_id}/commands",
                self.upsert_command,
                True,
            ),
            (
                "GET",
                "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}",
                self.get_command,
                True,
            ),
            (
                "PATCH",
                "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}",
                self.edit_command,
                True,
            ),
            (
                "DELETE",
                "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}",
                self.delete_command,
                True,
            ),
            ("GET", "/guilds/{guild_id}", self.get_guild, True),
            ("GET", "/guilds/{guild_id}/channels", self.get_guild_channels, True),
            ("GET", "/guilds/{guild_id}/roles", self.get_guild_roles, True),
            ("GET", "/guilds/{guild_id}/members", self.list_members, True),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member, True),
            ("GET", "/channels/{channel_id}", self.get_channel, True),
            ("GET", "/channels/{channel_id}/messages", self.list_messages, True),
            ("POST", "/channels/{channel_id}/messages", self.create_message, True),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message, True),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message, True),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message, True),
            (
                "POST",
                "/channels/{channel_id}/messages/{message_id}/threads",
                self.thread_from_message,
                True,
            ),
            (
                "PUT",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
                self.add_reaction,
                True,
            ),
            ("POST", "/channels/{channel_id}/threads", self.create_thread, True),
            ("POST", "/channels/{channel_id}/typing", self.typing, True),
            (
                "POST",
                "/interactions/{interaction_id}/{token}/callback",
                self.interaction_callback,
                False,
            ),
            ("POST", "/webhooks/{app_id}/{token}", self.webhook_execute, False),
            ("GET", "/webhooks/{app_id}/{token}/messages/{message_id}", self.webhook_get, False),
            ("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}", self.webhook_edit, False),
            (
                "DELETE",
                "/webhooks/{app_id}/{token}/messages/{message_id}",
                self.webhook_delete,
                False,
            ),
        ]
        return r

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def body(request: web.Request) -> dict[str, Any]:
        body = request.get(BODY_KEY)
        return body if isinstance(body, dict) else {}

    @staticmethod
    def files(request: web.Request) -> list[dict[str, Any]]:
        return list(request.get(FILES_KEY) or [])

    @staticmethod
    def int_param(request: web.Request, name: str) -> int:
        try:
            return int(request.match_info[name])
        except ValueError:
            raise ApiError(
                400,
                INVALID_FORM_BODY,
                errors={name: {"_errors": [{"code": "NUMBER_TYPE_COERCE"}]}},
            ) from None

    def bot_perms(self, channel: Channel) -> int:
        assert channel.guild_id is not None
        return self.w.permissions(channel.guild_id, self.w.bot_user.id, channel.id)

    def require(self, channel: Channel, bits: int) -> None:
        if channel.guild_id is None:
            return
        if self.w.bot_user.id not in self.w.guild(channel.guild_id).members:
            raise ApiError(403, MISSING_ACCESS)
        have = self.bot_perms(channel)
        if not have & P.VIEW_CHANNEL:
            raise ApiError(403, MISSING_ACCESS)
        if have & bits != bits:
            raise ApiError(403, MISSING_PERMISSIONS)

    def check_app(self, request: web.Request) -> None:
        if self.int_param(request, "app_id") != self.w.application_id:
            raise ApiError(403, MISSING_ACCESS)

    def check_sendable(self, channel: Channel, *, n_files: int) -> None:
        """Raise what Discord answers when the bot may not post in ``channel``."""
        if channel.type == DM:
            recipient = self.w.users[channel.recipients[0]]
            if recipient.dms_closed or recipient.bot:
                raise ApiError(403, CANNOT_SEND_TO_USER)
            return
        if channel.type not in (TEXT, ANNOUNCEMENT, PUBLIC_THREAD, PRIVATE_THREAD, 10, 2, 13):
            raise ApiError(400, NON_TEXT_CHANNEL)
        need = P.SEND_MESSAGES_IN_THREADS if channel.is_thread else P.SEND_MESSAGES
        if n_files:
            need |= P.ATTACH_FILES
        self.require(channel, need)
        if channel.is_thread and (channel.archived or channel.locked):
            raise ApiError(400, THREAD_ARCHIVED)

    def check_reference(self, channel: Channel, body: dict[str, Any]) -> None:
        ref = body.get("message_reference")
        if not ref or not ref.get("message_id"):
            return
        target = self.w.messages.get(int(ref["message_id"]))
        if (target is None or target.deleted) and ref.get("fail_if_not_exists", True):
            errors = FormErrors()
            errors.add(
                "message_reference",
                "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                "Unknown message",
            )
            errors.raise_if_any()

    # ------------------------------------------------------------------ users, app, gateway
    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.s.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "url": self.s.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def get_me(self, request: web.Request) -> web.Response:
        return json_response(self.w.client_user_payload())

    async def get_user(self, request: web.Request) -> web.Response:
        return json_response(self.w.user_payload(self.int_param(request, "user_id")))

    async def create_dm(self, request: web.Request) -> web.Response:
        body = self.body(request)
        try:
            user_id = int(body.get("recipient_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ApiError(400, INVALID_FORM_BODY) from None
        if user_id == self.w.bot_user.id:
            raise ApiError(400, CANNOT_SEND_TO_USER)
        channel = self.w.dm_channel_for(user_id)
        return json_response(self.w.channel_payload(channel.id))

    async def get_application(self, request: web.Request) -> web.Response:
        w = self.w
        return json_response(
            {
                "id": str(w.application_id),
                "name": w.bot_user.username,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": self.s.application_flags,
                "owner": w.owner.payload(),
                "team": None,
                "bot": w.client_user_payload(),
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": len(w.guilds),
                "tags": [],
            }
        )

    # ------------------------------------------------------------------ commands
    def _command_list(self, request: web.Request) -> tuple[int | None, list[dict[str, Any]]]:
        self.check_app(request)
        if "guild_id" in request.match_info:
            gid = self.int_param(request, "guild_id")
            guild = self.w.guild(gid)
            if self.w.bot_user.id not in guild.members:
                raise ApiError(403, MISSING_ACCESS)
            return gid, self.w.guild_commands.setdefault(gid, [])
        return None, self.w.global_commands

    async def list_commands(self, request: web.Request) -> web.Response:
        _, commands = self._command_list(request)
        return json_response(commands)

    async def put_commands(self, request: web.Request) -> web.Response:
        gid, _ = self._command_list(request)
        body = request.get(BODY_KEY)
        V.check_commands(body)
        stored = self.w.store_commands(body, gid)  # type: ignore[arg-type]
        self.s.command_syncs.append({"guild_id": gid, "commands": stored})
        self.s.notify()
        return json_response(stored)

    async def upsert_command(self, request: web.Request) -> web.Response:
        gid, commands = self._command_list(request)
        body = self.body(request)
        errors = FormErrors()
        V.check_command(body, errors)
        errors.raise_if_any()
        key = (body.get("type", 1), body.get("name"))
        old = next((c for c in commands if (c.get("type", 1), c["name"]) == key), None)
        entry = self.w.command_entry(body, gid, old)
        if old is not None:
            commands[commands.index(old)] = entry
        else:
            commands.append(entry)
        return json_response(entry, status=200 if old else 201)

    def _command(self, request: web.Request) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        _, commands = self._command_list(request)
        cid = str(self.int_param(request, "command_id"))
        for cmd in commands:
            if cmd["id"] == cid:
                return commands, cmd
        raise ApiError(404, UNKNOWN_COMMAND)

    async def get_command(self, request: web.Request) -> web.Response:
        return json_response(self._command(request)[1])

    async def edit_command(self, request: web.Request) -> web.Response:
        gid = int(request.match_info["guild_id"]) if "guild_id" in request.match_info else None
        commands, cmd = self._command(request)
        merged = {**cmd, **self.body(request)}
        entry = self.w.command_entry(merged, gid, cmd)
        commands[commands.index(cmd)] = entry
        return json_response(entry)

    async def delete_command(self, request: web.Request) -> web.Response:
        commands, cmd = self._command(request)
        commands.remove(cmd)
        return no_content()

    # ------------------------------------------------------------------ guilds
    async def get_guild(self, request: web.Request) -> web.Response:
        gid = self.int_param(request, "guild_id")
        payload = self.w.guild_payload(gid, gateway=False)
        if _truthy(request.query.get("with_counts")):
            payload["approximate_member_count"] = len(self.w.guild(gid).members)
            payload["approximate_presence_count"] = 0
        return json_response(payload)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        guild = self.w.guild(self.int_param(request, "guild_id"))
        return json_response(
            [
                self.w.channel_payload(c)
                for c in guild.channel_ids
                if c in self.w.channels and not self.w.channels[c].is_thread
            ]
        )

    async def get_guild_roles(self, request: web.Request) -> web.Response:
        guild = self.w.guild(self.int_param(request, "guild_id"))
        return json_response([r.payload() for r in guild.roles.values()])

    async def list_members(self, request: web.Request) -> web.Response:
        guild = self.w.guild(self.int_param(request, "guild_id"))
        limit = max(1, min(1000, int(request.query.get("limit", "1"))))
        after = int(request.query.get("after", "0"))
        ids = sorted(uid for uid in guild.members if uid > after)[:limit]
        return json_response([self.w.member_payload(guild.id, uid) for uid in ids])

    async def get_member(self, request: web.Request) -> web.Response:
        gid = self.int_param(request, "guild_id")
        uid = self.int_param(request, "user_id")
        return json_response(self.w.member_payload(gid, uid))

    # ------------------------------------------------------------------ channels and messages
    async def get_channel(self, request: web.Request) -> web.Response:
        channel = self.w.channel(self.int_param(request, "channel_id"))
        if channel.guild_id is not None:
            self.require(channel, P.VIEW_CHANNEL)
        return json_response(self.w.channel_payload(channel.id))

    async def list_messages(self, request: web.Request) -> web.Response:
        channel = self.w.channel(self.int_param(request, "channel_id"))
        self.require(channel, P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY)
        limit = max(1, min(100, int(request.query.get("limit", "50"))))
        msgs = [
            m
            for m in self.w.messages.values()
            if m.channel_id == channel.id and not m.deleted and not m.ephemeral
        ]
        msgs.sort(key=lambda m: m.id, reverse=True)
        if "before" in request.query:
            before = int(request.query["before"])
            msgs = [m for m in msgs if m.id < before]
        if "after" in request.query:
            after = int(request.query["after"])
            msgs = sorted((m for m in msgs if m.id > after), key=lambda m: m.id)[:limit]
            msgs.reverse()
        return json_response([self.w.message_payload(m) for m in msgs[:limit]])

    async def create_message(self, request: web.Request) -> web.Response:
        channel = self.w.channel(self.int_param(request, "channel_id"))
        body = self.body(request)
        files = self.files(request)
        self.check_sendable(channel, n_files=len(files))
        V.check_message_body(
            body,
            n_files=len(files),
            allow_flags=V.FLAG_SUPPRESS_EMBEDS
            | V.FLAG_SUPPRESS_NOTIFICATIONS
            | V.FLAG_IS_COMPONENTS_V2,
        )
        self.check_reference(channel, body)
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            key = (channel.id, self.w.bot_user.id, str(nonce))
            existing = self.w.nonces.get(key)
            ttl = self.s.nonce_ttl
            if existing is not None and (ttl is None or monotonic() - existing[1] < ttl):
                self.s.deduplicated_nonces += 1
                return json_response(self.w.message_payload(self.w.messages[existing[0]]))
        msg = self.w.new_message(channel, self.w.bot_user.id, body, files=files)
        if nonce is not None and body.get("enforce_nonce"):
            self.w.nonces[(channel.id, self.w.bot_user.id, str(nonce))] = (msg.id, monotonic())
        await self.s.echo("MESSAGE_CREATE", msg)
        return json_response(self.w.message_payload(msg))

    async def get_message(self, request: web.Request) -> web.Response:
        channel = self.w.channel(self.int_param(request, "channel_id"))
        self.require(channel, P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY)
        msg = self.w.message(channel.id, self.int_param(request, "message_id"))
        return json_response(self.w.message_payload(msg))

    async def edit_message(self, request: web.Request) -> web.Response:
        channel = self.w.channel(self.int_param(request, "channel_id"))
        msg = self.w.message(channel.id, self.int_param(request, "message_id"))
        body = self.body(request)
        if msg.author_id != self.w.bot_user.id:
            editable = set(body) <= {"flags"} and channel.guild_id is not None
            if not editable or not self.bot_perms(channel) & P.MANAGE_MESSAGES:
                raise ApiError(403, CANNOT_EDIT_OTHERS_MESSAGE)
        V.check_message_body(body, n_files=len(self.files(request)), creating=False)
        self.w.edit_message(msg, body, files=self.files(request))
        await self.s.echo("MESSAGE_UPDATE", msg)
        return json_response(self.w.message_payload(msg))

    async def delete_message(self, request: web.Request) -> web.Response:
        channel = self.w.channel(self.int_param(request, "channel_id"))
        msg = self.w.message(channel.id, self.int_param(request, "message_id"))
        if msg.author_id != self.w.bot_user.id:
            self.require(channel, P.MANAGE_MESSAGES)
        msg.deleted = True
        await self.s.dispatch(
            "MESSAGE_DELETE",
            {
                "id": str(msg.id),
                "channel_id": str(channel.id),
                **({"guild_id": str(channel.guild_id)} if channel.guild_id else {}),
            },
        )
        self.s.notify()
        return no_content()

    async def add_reaction(self, request: web.Request) -> web.Response:
        channel = self.w.channel(self.int_param(request, "channel_id"))
        self.require(channel, P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY | P.ADD_REACTIONS)
        msg = self.w.message(channel.id, self.int_param(request, "message_id"))
        msg.reactions.append(request.match_info["emoji"])
        self.s.notify()
        return no_content()

    async def typing(self, request: web.Request) -> web.Response:
        channel = self.w.channel(self.int_param(request, "channel_id"))
        self.check_sendable(channel, n_files=0)
        return no_content()

    # ------------------------------------------------------------------ threads
    def _thread_name(self, body: dict[str, Any]) -> str:
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= V.THREAD_NAME_MAX:
            errors = FormErrors()
            errors.add("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            errors.raise_if_any()
        return name  # type: ignore[return-value]

    def _new_thread(
        self, parent: Channel, name: str, body: dict[str, Any], *, type: int, id: int | None = None
    ) -> Channel:
        thread = self.w.add_channel(parent.guild_id, name, type=type, id=id, parent_id=parent.id)
        thread.owner_id = self.w.bot_user.id
        duration = body.get("auto_archive_duration")
        if duration:
            thread.auto_archive_duration = int(duration)
        return thread

    async def _announce_thread(self, thread: Channel) -> None:
        payload = self.w.channel_payload(thread.id)
        payload["newly_created"] = True
        await self.s.dispatch("THREAD_CREATE", payload)

    async def thread_from_message(self, request: web.Request) -> web.Response:
        channel = self.w.channel(self.int_param(request, "channel_id"))
        if channel.type not in (TEXT, ANNOUNCEMENT):
            raise ApiError(400, NON_TEXT_CHANNEL)
        self.require(channel, P.CREATE_PUBLIC_THREADS)
        msg = self.w.message(channel.id, self.int_param(request, "message_id"))
        body = self.body(request)
        name = self._thread_name(body)
        if msg.thread_id is not None:
            raise ApiError(400, 160004, "A thread has already been created for this message")
        thread = self._new_thread(channel, name, body, type=PUBLIC_THREAD, id=msg.id)
        msg.thread_id = thread.id
        await self._announce_thread(thread)
        self.s.notify()
        return json_response(self.w.channel_payload(thread.id), status=201)

    async def create_thread(self, request: web.Request) -> web.Response:
        channel = self.w.channel(self.int_param(request, "channel_id"))
        body = self.body(request)
        name = self._thread_name(body)
        if channel.type == FORUM:
            files = self.files(request)
            need = P.SEND_MESSAGES | (P.ATTACH_FILES if files else 0)
            self.require(channel, need)
            message = body.get("message")
            if not isinstance(message, dict):
                errors = FormErrors()
                errors.add("message", "BASE_TYPE_REQUIRED", "This field is required")
                errors.raise_if_any()
            V.check_message_body(message, n_files=len(files))  # type: ignore[arg-type]
            tags = [int(t) for t in body.get("applied_tags") or []]
            known = {int(t["id"]) for t in channel.available_tags}
            if any(t not in known for t in tags):
                errors = FormErrors()
                errors.add("applied_tags", "BASE_TYPE_CHOICES", "Unknown tag")
                errors.raise_if_any()
            tid = self.w.snowflakes()
            thread = self._new_thread(channel, name, body, type=PUBLIC_THREAD, id=tid)
            thread.applied_tags = tags
            starter = self.w.new_message(thread, self.w.bot_user.id, message, files=files, id=tid)  # type: ignore[arg-type]
            channel.last_message_id = tid
            await self._announce_thread(thread)
            await self.s.echo("MESSAGE_CREATE", starter)
            payload = self.w.channel_payload(thread.id)
            payload["message"] = self.w.message_payload(starter)
            return json_response(payload, status=201)
        if channel.type not in (TEXT, ANNOUNCEMENT):
            raise ApiError(400, NON_TEXT_CHANNEL)
        ttype = int(body.get("type") or PRIVATE_THREAD)
        if ttype not in (PUBLIC_THREAD, PRIVATE_THREAD, 10):
            raise ApiError(400, INVALID_FORM_BODY)
        self.require(
            channel,
            P.CREATE_PUBLIC_THREADS if ttype != PRIVATE_THREAD else P.CREATE_PRIVATE_THREADS,
        )
        thread = self._new_thread(channel, name, body, type=ttype)
        await self._announce_thread(thread)
        self.s.notify()
        return json_response(self.w.channel_payload(thread.id), status=201)

    # ------------------------------------------------------------------ interactions
    def _handle_for_token(self, request: web.Request) -> InteractionHandle:
        token = request.match_info["token"]
        handle = self.s.interactions_by_token.get(token)
        if handle is None or self.int_param(request, "app_id") != self.w.application_id:
            raise ApiError(404, UNKNOWN_WEBHOOK)
        if monotonic() - handle.created > self.s.interaction_token_ttl:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return handle

    async def interaction_callback(self, request: web.Request) -> web.Response:
        iid = self.int_param(request, "interaction_id")
        handle = self.s.interactions.get(iid)
        body = self.body(request)
        if handle is None or handle.token != request.match_info["token"]:
            raise ApiError(404, UNKNOWN_INTERACTION)
        if handle.callback is not None:
            handle.rejected.append(body)
            raise ApiError(400, ALREADY_ACKNOWLEDGED)
        elapsed = monotonic() - handle.created
        if elapsed > self.s.interaction_deadline:
            handle.rejected.append(body)
            raise ApiError(404, UNKNOWN_INTERACTION)
        rtype = body.get("type")
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        files = self.files(request)
        message: StoredMessage | None = None
        itype = handle.type
        if rtype == CHANNEL_MESSAGE:
            self._allowed(itype, (APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT))
            V.check_message_body(data, n_files=len(files))
            message = self._interaction_message(handle, data, files)
            handle.original = message
        elif rtype == DEFERRED_CHANNEL_MESSAGE:
            self._allowed(itype, (APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT))
            flags = 128 | (int(data.get("flags") or 0) & 64)
            message = self._interaction_message(handle, {"content": "", "flags": flags}, [])
            handle.original = message
        elif rtype == DEFERRED_UPDATE_MESSAGE:
            self._allowed(itype, (MESSAGE_COMPONENT, MODAL_SUBMIT))
            handle.original = self._source_message(handle)
        elif rtype == UPDATE_MESSAGE:
            self._allowed(itype, (MESSAGE_COMPONENT, MODAL_SUBMIT))
            V.check_message_body(data, n_files=len(files), creating=False)
            message = self._source_message(handle)
            self.w.edit_message(message, data, files=files, via="interaction")
            handle.original = message
            await self.s.echo("MESSAGE_UPDATE", message)
        elif rtype == AUTOCOMPLETE_RESULT:
            self._allowed(itype, (AUTOCOMPLETE,))
            V.check_autocomplete(data)
        elif rtype == MODAL:
            self._allowed(itype, (APPLICATION_COMMAND, MESSAGE_COMPONENT))
            self._check_modal(data)
        else:
            raise ApiError(
                400,
                INVALID_FORM_BODY,
                errors={"type": {"_errors": [{"code": "BASE_TYPE_CHOICES"}]}},
            )
        handle.callback = body
        handle.callback_delay = elapsed
        if rtype in (CHANNEL_MESSAGE, UPDATE_MESSAGE):
            handle.answered_delay = elapsed
        self.s.notify()
        if message is not None and not message.ephemeral and rtype == CHANNEL_MESSAGE:
            await self.s.echo("MESSAGE_CREATE", message)
        if not _truthy(request.query.get("with_response")):
            return no_content()
        info: dict[str, Any] = {"id": str(handle.id), "type": handle.type}
        if message is not None:
            info.update(
                {
                    "response_message_id": str(message.id),
                    "response_message_loading": message.loading,
                    "response_message_ephemeral": message.ephemeral,
                }
            )
        out: dict[str, Any] = {"interaction": info}
        if rtype in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, UPDATE_MESSAGE) and message:
            out["resource"] = {"type": rtype, "message": self.w.message_payload(message)}
        return json_response(out)

    @staticmethod
    def _allowed(itype: int, allowed: tuple[int, ...]) -> None:
        if itype not in allowed:
            raise ApiError(
                400,
                INVALID_FORM_BODY,
                "Interaction response type is not valid for this interaction",
                errors={"type": {"_errors": [{"code": "INTERACTION_RESPONSE_TYPE_INVALID"}]}},
            )

    @staticmethod
    def _check_modal(data: dict[str, Any]) -> None:
        errors = FormErrors()
        if not data.get("custom_id"):
            errors.add("data.custom_id", "BASE_TYPE_REQUIRED", "This field is required")
        title = data.get("title")
        if not isinstance(title, str) or not 1 <= len(title) <= 45:
            errors.add("data.title", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
        comps = data.get("components") or []
        if not 1 <= len(comps) <= 5:
            errors.add("data.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5.")
        errors.raise_if_any()

    def _source_message(self, handle: InteractionHandle) -> StoredMessage:
        if handle.message_id is None or handle.message_id not in self.w.messages:
            raise ApiError(404, UNKNOWN_MESSAGE)
        return self.w.messages[handle.message_id]

    def _interaction_message(
        self, handle: InteractionHandle, data: dict[str, Any], files: list[dict[str, Any]]
    ) -> StoredMessage:
        channel = self.w.channel(handle.channel_id)
        mtype = 20 if handle.type == APPLICATION_COMMAND else 0
        msg = self.w.new_message(
            channel, self.w.bot_user.id, data, files=files, type=mtype, via="interaction"
        )
        msg.webhook_id = self.w.application_id
        msg.application_id = self.w.application_id
        msg.interaction_id = handle.id
        msg.interaction_metadata = interaction_metadata(handle, self.w)
        return msg

    def _webhook_message(self, handle: InteractionHandle, message_id: str) -> StoredMessage:
        if message_id == "@original":
            if handle.original is None or handle.original.deleted:
                raise ApiError(404, UNKNOWN_MESSAGE)
            return handle.original
        try:
            mid = int(message_id)
        except ValueError:
            raise ApiError(404, UNKNOWN_MESSAGE) from None
        for msg in [handle.original, *handle.followups]:
            if msg is not None and msg.id == mid and not msg.deleted:
                return msg
        raise ApiError(404, UNKNOWN_MESSAGE)

    async def webhook_execute(self, request: web.Request) -> web.Response:
        handle = self._handle_for_token(request)
        if handle.callback is None or handle.response_type in (AUTOCOMPLETE_RESULT, MODAL):
            # Follow-ups need an acknowledged interaction first.
            raise ApiError(404, UNKNOWN_WEBHOOK)
        body = self.body(request)
        files = self.files(request)
        V.check_message_body(body, n_files=len(files))
        original = handle.original
        if (
            original is not None
            and original.loading
            and handle.response_type == DEFERRED_CHANNEL_MESSAGE
        ):
            # The first follow-up after a "thinking" defer fills the deferred message.
            msg = self.w.edit_message(original, body, files=files, via="followup")
        else:
            channel = self.w.channel(handle.channel_id)
            thread_id = request.query.get("thread_id")
            if thread_id:
                channel = self.w.channel(int(thread_id))
            msg = self.w.new_message(channel, self.w.bot_user.id, body, files=files, via="followup")
            msg.webhook_id = self.w.application_id
            msg.application_id = self.w.application_id
            msg.interaction_id = handle.id
            msg.interaction_metadata = interaction_metadata(handle, self.w)
            if not msg.ephemeral:
                await self.s.echo("MESSAGE_CREATE", msg)
        handle.followups.append(msg)
        if handle.answered_delay is None:
            handle.answered_delay = monotonic() - handle.created
        self.s.notify()
        if not _truthy(request.query.get("wait")):
            return no_content()
        return json_response(self.w.message_payload(msg))

    async def webhook_get(self, request: web.Request) -> web.Response:
        handle = self._handle_for_token(request)
        msg = self._webhook_message(handle, request.match_info["message_id"])
        return json_response(self.w.message_payload(msg))

    async def webhook_edit(self, request: web.Request) -> web.Response:
        handle = self._handle_for_token(request)
        msg = self._webhook_message(handle, request.match_info["message_id"])
        body = self.body(request)
        files = self.files(request)
        V.check_message_body(body, n_files=len(files), creating=False)
        self.w.edit_message(msg, body, files=files, via="webhook")
        if handle.answered_delay is None and msg is handle.original:
            handle.answered_delay = monotonic() - handle.created
        if not msg.ephemeral:
            await self.s.echo("MESSAGE_UPDATE", msg)
        self.s.notify()
        return json_response(self.w.message_payload(msg))

    async def webhook_delete(self, request: web.Request) -> web.Response:
        handle = self._handle_for_token(request)
        msg = self._webhook_message(handle, request.match_info["message_id"])
        msg.deleted = True
        self.s.notify()
        return no_content()
