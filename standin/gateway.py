"""The gateway websocket: HELLO, heartbeats, IDENTIFY/READY/GUILD_CREATE, RESUME, member chunks."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from . import perms as P

if TYPE_CHECKING:
    from .server import StandIn

log = logging.getLogger(__name__)

OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE = 3
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

CLOSE_AUTH_FAILED = 4004
CLOSE_DISALLOWED_INTENTS = 4014

# Which intent a dispatch needs; events not listed are always sent.
_GUILD_EVENTS = [
    "GUILD_CREATE",
    "GUILD_UPDATE",
    "GUILD_DELETE",
    "GUILD_ROLE_CREATE",
    "GUILD_ROLE_UPDATE",
    "GUILD_ROLE_DELETE",
    "CHANNEL_CREATE",
    "CHANNEL_UPDATE",
    "CHANNEL_DELETE",
    "THREAD_CREATE",
    "THREAD_UPDATE",
    "THREAD_DELETE",
    "THREAD_LIST_SYNC",
    "THREAD_MEMBER_UPDATE",
]
EVENT_INTENTS: dict[str, tuple[int, int]] = {  # event -> (guild intent, DM intent)
    **{e: (P.INTENT_GUILDS, P.INTENT_GUILDS) for e in _GUILD_EVENTS},
    "GUILD_MEMBER_ADD": (P.INTENT_GUILD_MEMBERS, 0),
    "GUILD_MEMBER_UPDATE": (P.INTENT_GUILD_MEMBERS, 0),
    "GUILD_MEMBER_REMOVE": (P.INTENT_GUILD_MEMBERS, 0),
    "GUILD_BAN_ADD": (P.INTENT_GUILD_MODERATION, 0),
    "GUILD_BAN_REMOVE": (P.INTENT_GUILD_MODERATION, 0),
    "PRESENCE_UPDATE": (P.INTENT_GUILD_PRESENCES, 0),
    "MESSAGE_CREATE": (P.INTENT_GUILD_MESSAGES, P.INTENT_DIRECT_MESSAGES),
    "MESSAGE_UPDATE": (P.INTENT_GUILD_MESSAGES, P.INTENT_DIRECT_MESSAGES),
    "MESSAGE_DELETE": (P.INTENT_GUILD_MESSAGES, P.INTENT_DIRECT_MESSAGES),
    "MESSAGE_DELETE_BULK": (P.INTENT_GUILD_MESSAGES, 0),
    "MESSAGE_REACTION_ADD": (P.INTENT_GUILD_MESSAGE_REACTIONS, P.INTENT_DIRECT_MESSAGE_REACTIONS),
    "MESSAGE_REACTION_REMOVE": (
        P.INTENT_GUILD_MESSAGE_REACTIONS,
        P.INTENT_DIRECT_MESSAGE_REACTIONS,
    ),
    "TYPING_START": (P.INTENT_GUILD_MESSAGE_TYPING, P.INTENT_DIRECT_MESSAGE_TYPING),
}


@dataclass
class Session:
    """A gateway session: survives a dropped connection so that RESUME can replay events."""

    id: str
    identify: dict[str, Any]
    intents: int
    seq: int = 0
    connection: GatewayConnection | None = None
    backlog: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=5000))
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    resumes: int = 0

    @property
    def privileged_intents(self) -> list[str]:
        return P.privileged_names(self.intents)

    def wants(self, event: str, data: Any) -> bool:
        needed = EVENT_INTENTS.get(event)
        if needed is None:
            return True
        in_guild = isinstance(data, dict) and data.get("guild_id") is not None
        bit = needed[0] if in_guild or needed[1] == 0 else needed[1]
        return bool(self.intents & bit)


class GatewayConnection:
    """One websocket connection from a client."""

    def __init__(self, standin: StandIn, ws: web.WebSocketResponse, query: dict[str, str]) -> None:
        self.standin = standin
        self.ws = ws
        self.query = query
        self.session: Session | None = None
        self.heartbeats = 0
        self.received: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()

    async def send(self, payload: dict[str, Any]) -> bool:
        if self.ws.closed:
            return False
        text = json.dumps(payload, separators=(",", ":"))
        async with self._lock:
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError) as exc:
                log.debug("gateway send failed: %s", exc)
                return False
        return True

    async def close(self, code: int = 1000, message: str = "") -> None:
        if not self.ws.closed:
            await self.ws.close(code=code, message=message.encode())

    async def run(self) -> None:
        standin = self.standin
        await self.send(
            {
                "op": OP_HELLO,
                "d": {"heartbeat_interval": standin.heartbeat_interval_ms, "_trace": ["standin"]},
                "s": None,
                "t": None,
            }
        )
        async for msg in self.ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type == WSMsgType.ERROR:
                    break
                continue
            try:
                payload = json.loads(msg.data)
            except ValueError:
                await self.close(4002, "Error while decoding payload.")
                break
            self.received.append(payload)
            await self.handle(payload)

    async def handle(self, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        data = payload.get("d")
        standin = self.standin
        if op == OP_HEARTBEAT:
            self.heartbeats += 1
            await self.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == OP_IDENTIFY:
            await self.identify(data or {})
        elif op == OP_RESUME:
            await self.resume(data or {})
        elif op == OP_REQUEST_MEMBERS:
            await self.request_members(data or {})
        elif op == OP_PRESENCE:
            standin.presence_updates.append(data)
        else:
            log.info("gateway: ignoring op %s", op)

    async def identify(self, data: dict[str, Any]) -> None:
        standin = self.standin
        if data.get("token") != standin.token:
            standin.failed_identifies += 1
            await self.close(CLOSE_AUTH_FAILED, "Authentication failed.")
            return
        intents = int(data.get("intents") or 0)
        recorded = dict(data)
        recorded["token"] = "<redacted>"
        standin.identify_payloads.append(recorded)
        if standin.reject_privileged_intents and intents & P.PRIVILEGED_MASK:
            await self.close(CLOSE_DISALLOWED_INTENTS, "Disallowed intent(s).")
            standin.notify()
            return
        session = Session(id=secrets.token_hex(16), identify=recorded, intents=intents)
        session.connection = self
        self.session = session
        standin.sessions[session.id] = session
        standin.notify()
        world = standin.world
        ready: dict[str, Any] = {
            "v": 10,
            "user": world.client_user_payload(),
            "user_settings": {},
            "guilds": [{"id": str(g), "unavailable": True} for g in world.guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": standin.gateway_url,
            "relationships": [],
            "private_channels": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
            "application": {"id": str(world.application_id), "flags": standin.application_flags},
            "_trace": ["standin"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self.dispatch("READY", ready)
        members = bool(intents & P.INTENT_GUILD_PRESENCES) or standin.full_member_lists
        for guild_id in list(world.guilds):
            if not intents & P.INTENT_GUILDS:
                break
            if guild_id in standin.unavailable_guilds:
                continue  # an outage: listed in READY as unavailable, no GUILD_CREATE
            await self.dispatch(
                "GUILD_CREATE", world.guild_payload(guild_id, include_members=members)
            )
        session.ready.set()
        standin.notify()

    async def resume(self, data: dict[str, Any]) -> None:
        standin = self.standin
        session = standin.sessions.get(str(data.get("session_id")))
        if data.get("token") != standin.token or session is None:
            await self.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        old = session.connection
        if old is not None and old is not self:
            await old.close(4000, "Session taken over")
        session.connection = self
        self.session = session
        session.resumes += 1
        seq = int(data.get("seq") or 0)
        for event in list(session.backlog):
            if event["s"] > seq:
                await self.send(event)
        await self.dispatch("RESUMED", {"_trace": ["standin"]})
        standin.notify()

    async def request_members(self, data: dict[str, Any]) -> None:
        world = self.standin.world
        guild_ids = data.get("guild_id")
        if not isinstance(guild_ids, list):
            guild_ids = [guild_ids]
        query = data.get("query")
        limit = int(data.get("limit") or 0)
        user_ids = data.get("user_ids")
        if user_ids is not None and not isinstance(user_ids, list):
            user_ids = [user_ids]
        for gid in guild_ids:
            guild = world.guilds.get(int(gid))
            if guild is None:
                continue
            found = []
            not_found = []
            if user_ids is not None:
                for uid in user_ids:
                    if int(uid) in guild.members:
                        found.append(int(uid))
                    else:
                        not_found.append(str(uid))
            else:
                for uid in guild.members:
                    name = world.users[uid].username
                    if query and not name.lower().startswith(str(query).lower()):
                        continue
                    found.append(uid)
                if limit:
                    found = found[:limit]
            chunk: dict[str, Any] = {
                "guild_id": str(guild.id),
                "members": [world.member_payload(guild.id, uid) for uid in found],
                "chunk_index": 0,
                "chunk_count": 1,
            }
            if not_found:
                chunk["not_found"] = not_found
            if data.get("presences"):
                chunk["presences"] = []
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            await self.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def dispatch(self, event: str, data: Any) -> bool:
        session = self.session
        if session is None:
            return False
        session.seq += 1
        payload = {"op": OP_DISPATCH, "t": event, "s": session.seq, "d": data}
        session.backlog.append(payload)
        self.standin.dispatched.append((event, data))
        return await self.send(payload)


async def gateway_handler(standin: StandIn, request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
    await ws.prepare(request)
    conn = GatewayConnection(standin, ws, dict(request.query))
    standin.connections.append(conn)
    standin.gateway_queries.append(dict(request.query))
    try:
        await conn.run()
    finally:
        if conn in standin.connections:
            standin.connections.remove(conn)
        if conn.session is not None and conn.session.connection is conn:
            conn.session.connection = None
        standin.notify()
    return ws
