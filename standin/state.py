"""The stand-in's world: users, guilds, roles, channels, members, messages, commands.

Test-facing ids are ``int``; wire payloads carry them as strings, as Discord does.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field
from typing import Any

from . import perms as P
from .errors import (
    UNKNOWN_CHANNEL,
    UNKNOWN_GUILD,
    UNKNOWN_MEMBER,
    UNKNOWN_MESSAGE,
    UNKNOWN_USER,
    ApiError,
)
from .mentions import Pings, compute_pings, no_pings
from .snowflake import SnowflakeFactory, iso_now

TEXT = 0
DM = 1
CATEGORY = 4
ANNOUNCEMENT = 5
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12
FORUM = 15
THREAD_TYPES = (10, PUBLIC_THREAD, PRIVATE_THREAD)
MESSAGEABLE_TYPES = (TEXT, DM, ANNOUNCEMENT, 10, PUBLIC_THREAD, PRIVATE_THREAD, 2, 13)


@dataclass
class User:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None
    dms_closed: bool = False

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "primary_guild": None,
            "collectibles": None,
        }
        if self.bot:
            out["bot"] = True
        return out

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass
class Role:
    id: int
    guild_id: int
    name: str
    permissions: int = 0
    position: int = 0
    mentionable: bool = False
    managed: bool = False
    bot_id: int | None = None
    color: int = 0

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "color": self.color,
            "colors": {
                "primary_color": self.color,
                "secondary_color": None,
                "tertiary_color": None,
            },
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": self.mentionable,
            "flags": 0,
        }
        if self.bot_id is not None:
            out["tags"] = {"bot_id": str(self.bot_id)}
        return out

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"


@dataclass
class Member:
    guild_id: int
    user_id: int
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso_now)


@dataclass
class Channel:
    id: int
    type: int
    name: str | None
    guild_id: int | None = None
    position: int = 0
    parent_id: int | None = None
    overwrites: list[dict[str, Any]] = field(default_factory=list)
    topic: str | None = None
    nsfw: bool = False
    recipients: list[int] = field(default_factory=list)
    owner_id: int | None = None
    archived: bool = False
    locked: bool = False
    auto_archive_duration: int = 1440
    created_at: str = field(default_factory=iso_now)
    message_count: int = 0
    last_message_id: int | None = None
    available_tags: list[dict[str, Any]] = field(default_factory=list)
    applied_tags: list[int] = field(default_factory=list)
    flags: int = 0

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    members: dict[int, Member] = field(default_factory=dict)
    joined_at: str = field(default_factory=iso_now)

    @property
    def everyone_role(self) -> Role:
        return self.roles[self.id]


@dataclass
class StoredMessage:
    """A message the stand-in holds (sent by the bot, or posted by a test as a user)."""

    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    tts: bool = False
    nonce: str | int | None = None
    allowed_mentions: dict[str, Any] | None = None
    pings: Pings = field(default_factory=no_pings)
    body: dict[str, Any] | None = None
    timestamp: str = field(default_factory=iso_now)
    edited_timestamp: str | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    message_reference: dict[str, Any] | None = None
    thread_id: int | None = None
    reactions: list[str] = field(default_factory=list)
    via: str = "rest"

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & 64)

    @property
    def loading(self) -> bool:
        return bool(self.flags & 128)

    def embed_titles(self) -> list[str]:
        return [e.get("title") or "" for e in self.embeds]


def _clean(value: Any) -> Any:
    return copy.deepcopy(value)


class World:
    """All entities plus the payload builders and the rules that tie them together."""

    def __init__(self, *, bot_name: str = "PaperBot") -> None:
        self.snowflakes = SnowflakeFactory()
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, StoredMessage] = {}
        self.dm_by_user: dict[int, int] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.bot_user = self.add_user(bot_name, bot=True)
        self.application_id = self.snowflakes()
        self.owner = self.add_user("app-owner")
        self.nonces: dict[tuple[int, int, str], tuple[int, float]] = {}  # message id, when

    # ----------------------------------------------------------------- building the world
    def add_user(self, username: str, *, bot: bool = False, id: int | None = None) -> User:
        user = User(id=id or self.snowflakes(), username=username, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(
        self,
        name: str,
        *,
        id: int | None = None,
        owner_id: int | None = None,
        everyone_permissions: int = P.DEFAULT_EVERYONE,
        bot_permissions: int = P.DEFAULT_BOT,
    ) -> Guild:
        gid = id or self.snowflakes()
        owner = owner_id or self.add_user(f"{name}-owner").id
        guild = Guild(id=gid, name=name, owner_id=owner)
        self.guilds[gid] = guild
        guild.roles[gid] = Role(
            id=gid, guild_id=gid, name="@everyone", permissions=everyone_permissions
        )
        bot_role = self.add_role(
            gid, self.bot_user.username, permissions=bot_permissions, managed=True
        )
        bot_role.bot_id = self.bot_user.id
        self.add_member(gid, self.bot_user.id, roles=[bot_role.id])
        self.add_member(gid, owner)
        return guild

    def add_role(
        self,
        guild_id: int,
        name: str,
        *,
        permissions: int = 0,
        mentionable: bool = False,
        managed: bool = False,
        id: int | None = None,
    ) -> Role:
        guild = self.guild(guild_id)
        role = Role(
            id=id or self.snowflakes(),
            guild_id=guild_id,
            name=name,
            permissions=permissions,
            position=len(guild.roles),
            mentionable=mentionable,
            managed=managed,
        )
        guild.roles[role.id] = role
        return role

    def bot_role(self, guild_id: int) -> Role:
        for role in self.guild(guild_id).roles.values():
            if role.bot_id == self.bot_user.id:
                return role
        raise LookupError("guild has no bot role")

    def add_channel(
        self,
        guild_id: int | None,
        name: str | None,
        *,
        type: int = TEXT,
        id: int | None = None,
        parent_id: int | None = None,
        overwrites: list[dict[str, Any]] | None = None,
        topic: str | None = None,
        available_tags: list[dict[str, Any]] | None = None,
    ) -> Channel:
        cid = id or self.snowflakes()
        position = 0
        if guild_id is not None:
            guild = self.guild(guild_id)
            if type not in THREAD_TYPES:
                position = sum(1 for c in guild.channel_ids if not self.channels[c].is_thread)
            guild.channel_ids.append(cid)
        channel = Channel(
            id=cid,
            type=type,
            name=name,
            guild_id=guild_id,
            position=position,
            parent_id=parent_id,
            overwrites=list(overwrites or []),
            topic=topic,
            available_tags=list(available_tags or []),
        )
        self.channels[cid] = channel
        return channel

    def add_member(
        self, guild_id: int, user_id: int, *, roles: list[int] | tuple[int, ...] = (), nick=None
    ) -> Member:
        guild = self.guild(guild_id)
        self.user(user_id)
        member = Member(guild_id=guild_id, user_id=user_id, roles=list(roles), nick=nick)
        guild.members[user_id] = member
        return member

    def remove_member(self, guild_id: int, user_id: int) -> Member:
        guild = self.guild(guild_id)
        try:
            return guild.members.pop(user_id)
        except KeyError:
            raise LookupError(f"user {user_id} is not a member of guild {guild_id}") from None

    def remove_role(self, guild_id: int, role_id: int) -> Role:
        """Delete a role (and take it from every member holding it)."""
        guild = self.guild(guild_id)
        if role_id == guild_id:
            raise ValueError("@everyone cannot be deleted")
        try:
            role = guild.roles.pop(role_id)
        except KeyError:
            raise LookupError(f"guild {guild_id} has no role {role_id}") from None
        for member in guild.members.values():
            if role_id in member.roles:
                member.roles.remove(role_id)
        return role

    def remove_channel(self, channel_id: int) -> Channel:
        """Delete a channel and its threads (their messages stay readable to tests)."""
        channel = self.channel(channel_id)
        doomed = [channel_id, *(c.id for c in self.channels.values() if c.parent_id == channel_id)]
        for cid in doomed:
            gone = self.channels.pop(cid)
            if gone.guild_id is not None and gone.guild_id in self.guilds:
                self.guilds[gone.guild_id].channel_ids.remove(cid)
        return channel

    def remove_guild(self, guild_id: int) -> Guild:
        """Forget a guild and its channels (as seen by a bot that was removed from it)."""
        guild = self.guild(guild_id)
        for cid in list(guild.channel_ids):
            self.channels.pop(cid, None)
        return self.guilds.pop(guild_id)

    def set_overwrite(
        self,
        channel_id: int,
        target_id: int,
        *,
        allow: int = 0,
        deny: int = 0,
        member: bool = False,
    ) -> None:
        channel = self.channel(channel_id)
        channel.overwrites = [o for o in channel.overwrites if int(o["id"]) != target_id]
        channel.overwrites.append(
            {
                "id": str(target_id),
                "type": 1 if member else 0,
                "allow": str(allow),
                "deny": str(deny),
            }
        )

    def dm_channel_for(self, user_id: int) -> Channel:
        self.user(user_id)
        cid = self.dm_by_user.get(user_id)
        if cid is not None:
            return self.channels[cid]
        channel = self.add_channel(None, None, type=DM)
        channel.recipients = [user_id]
        self.dm_by_user[user_id] = channel.id
        return channel

    # ----------------------------------------------------------------- lookups (raise ApiError)
    def user(self, user_id: int) -> User:
        try:
            return self.users[int(user_id)]
        except (KeyError, ValueError):
            raise ApiError(404, UNKNOWN_USER) from None

    def guild(self, guild_id: int) -> Guild:
        try:
            return self.guilds[int(guild_id)]
        except (KeyError, ValueError):
            raise ApiError(404, UNKNOWN_GUILD) from None

    def channel(self, channel_id: int) -> Channel:
        try:
            return self.channels[int(channel_id)]
        except (KeyError, ValueError):
            raise ApiError(404, UNKNOWN_CHANNEL) from None

    def member(self, guild_id: int, user_id: int) -> Member:
        guild = self.guild(guild_id)
        try:
            return guild.members[int(user_id)]
        except (KeyError, ValueError):
            raise ApiError(404, UNKNOWN_MEMBER) from None

    def message(self, channel_id: int, message_id: int) -> StoredMessage:
        msg = self.messages.get(int(message_id))
        if msg is None or msg.deleted or msg.channel_id != int(channel_id) or msg.ephemeral:
            raise ApiError(404, UNKNOWN_MESSAGE)
        return msg

    # ----------------------------------------------------------------- permissions
    def permissions(self, guild_id: int, user_id: int, channel_id: int | None = None) -> int:
        """Permissions of a member, in a channel when ``channel_id`` is given."""
        guild = self.guild(guild_id)
        member = guild.members.get(int(user_id))
        roles = member.roles if member else []
        role_perms = {rid: r.permissions for rid, r in guild.roles.items()}
        base = P.compute_base(
            guild_id=guild.id,
            owner_id=guild.owner_id,
            user_id=int(user_id),
            member_roles=roles,
            role_permissions=role_perms,
        )
        if channel_id is None:
            return base
        channel = self.channel(channel_id)
        if channel.is_thread and channel.parent_id is not None:
            channel = self.channel(channel.parent_id)
        return P.apply_overwrites(
            base,
            guild_id=guild.id,
            user_id=int(user_id),
            member_roles=roles,
            overwrites=channel.overwrites,
        )

    # ----------------------------------------------------------------- payloads
    def user_payload(self, user_id: int) -> dict[str, Any]:
        return self.user(user_id).payload()

    def client_user_payload(self) -> dict[str, Any]:
        out = self.bot_user.payload()
        out.update({"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"})
        return out

    def member_payload(
        self, guild_id: int, user_id: int, *, with_user: bool = True, channel_id: int | None = None
    ) -> dict[str, Any]:
        member = self.member(guild_id, user_id)
        out: dict[str, Any] = {
            "roles": [str(r) for r in member.roles],
            "nick": member.nick,
            "avatar": None,
            "banner": None,
            "joined_at": member.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            out["user"] = self.user_payload(user_id)
        if channel_id is not None:
            out["permissions"] = str(self.permissions(guild_id, user_id, channel_id))
        return out

    def channel_payload(self, channel_id: int) -> dict[str, Any]:
        ch = self.channel(channel_id)
        if ch.type == DM:
            return {
                "id": str(ch.id),
                "type": DM,
                "last_message_id": str(ch.last_message_id) if ch.last_message_id else None,
                "recipients": [self.user_payload(u) for u in ch.recipients],
                "flags": 0,
            }
        out: dict[str, Any] = {
            "id": str(ch.id),
            "type": ch.type,
            "guild_id": str(ch.guild_id),
            "name": ch.name,
            "parent_id": str(ch.parent_id) if ch.parent_id else None,
            "last_message_id": str(ch.last_message_id) if ch.last_message_id else None,
            "rate_limit_per_user": 0,
            "flags": ch.flags,
        }
        if ch.is_thread:
            out.update(
                {
                    "owner_id": str(ch.owner_id) if ch.owner_id else None,
                    "message_count": ch.message_count,
                    "total_message_sent": ch.message_count,
                    "member_count": 1,
                    "applied_tags": [str(t) for t in ch.applied_tags],
                    "thread_metadata": {
                        "archived": ch.archived,
                        "auto_archive_duration": ch.auto_archive_duration,
                        "archive_timestamp": ch.created_at,
                        "locked": ch.locked,
                        "create_timestamp": ch.created_at,
                        "invitable": True,
                    },
                    "member": {
                        "id": str(ch.id),
                        "user_id": str(self.bot_user.id),
                        "join_timestamp": ch.created_at,
                        "flags": 0,
                    },
                }
            )
            return out
        out.update(
            {
                "position": ch.position,
                "permission_overwrites": _clean(ch.overwrites),
                "nsfw": ch.nsfw,
                "topic": ch.topic,
                "default_auto_archive_duration": 1440,
            }
        )
        if ch.type == FORUM:
            out.update(
                {
                    "available_tags": _clean(ch.available_tags),
                    "default_reaction_emoji": None,
                    "default_sort_order": None,
                    "default_forum_layout": 0,
                    "default_thread_rate_limit_per_user": 0,
                }
            )
        return out

    def guild_payload(
        self, guild_id: int, *, include_members: bool = True, gateway: bool = True
    ) -> dict[str, Any]:
        g = self.guild(guild_id)
        out: dict[str, Any] = {
            "id": str(g.id),
            "name": g.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(g.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.payload() for r in g.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "incidents_data": None,
        }
        if gateway:
            channels = [self.channels[c] for c in g.channel_ids if c in self.channels]
            out.update(
                {
                    "joined_at": g.joined_at,
                    "large": False,
                    "unavailable": False,
                    "lazy": True,
                    "member_count": len(g.members),
                    "voice_states": [],
                    "members": [
                        self.member_payload(g.id, uid)
                        for uid in g.members
                        if include_members or uid == self.bot_user.id
                    ],
                    "channels": [self.channel_payload(c.id) for c in channels if not c.is_thread],
                    "threads": [
                        self.channel_payload(c.id)
                        for c in channels
                        if c.is_thread and not c.archived
                    ],
                    "presences": [],
                    "stage_instances": [],
                    "guild_scheduled_events": [],
                    "soundboard_sounds": [],
                }
            )
        return out

    def message_payload(self, msg: StoredMessage, *, gateway: bool = False) -> dict[str, Any]:
        author = self.user(msg.author_id)
        mentions = []
        for uid in msg.pings["users"]:
            user = self.users.get(uid)
            if user is None:
                continue
            payload = user.payload()
            if gateway and msg.guild_id and uid in self.guild(msg.guild_id).members:
                payload["member"] = self.member_payload(msg.guild_id, uid, with_user=False)
            mentions.append(payload)
        out: dict[str, Any] = {
            "id": str(msg.id),
            "type": msg.type,
            "content": msg.content,
            "channel_id": str(msg.channel_id),
            "author": author.payload(),
            "attachments": _clean(msg.attachments),
            "embeds": _clean(msg.embeds),
            "mentions": mentions,
            "mention_roles": [str(r) for r in msg.pings["roles"]],
            "mention_everyone": self._actually_pings_everyone(msg),
            "pinned": False,
            "tts": msg.tts,
            "timestamp": msg.timestamp,
            "edited_timestamp": msg.edited_timestamp,
            "flags": msg.flags,
            "components": _clean(msg.components),
        }
        if msg.nonce is not None:
            out["nonce"] = msg.nonce
        if msg.webhook_id is not None:
            out["webhook_id"] = str(msg.webhook_id)
        if msg.application_id is not None:
            out["application_id"] = str(msg.application_id)
        if msg.interaction_metadata is not None:
            out["interaction_metadata"] = _clean(msg.interaction_metadata)
        if msg.message_reference is not None:
            out["message_reference"] = _clean(msg.message_reference)
            ref = self.messages.get(int(msg.message_reference.get("message_id") or 0))
            if ref is not None and not ref.deleted and ref.id != msg.id:
                out["referenced_message"] = self.message_payload(ref)
        if msg.thread_id is not None and msg.thread_id in self.channels:
            out["thread"] = self.channel_payload(msg.thread_id)
        channel = self.channels.get(msg.channel_id)
        if channel is not None and channel.is_thread:
            out["position"] = max(0, channel.message_count - 1)
        if gateway and msg.guild_id is not None:
            out["guild_id"] = str(msg.guild_id)
            if msg.author_id in self.guild(msg.guild_id).members and msg.webhook_id is None:
                out["member"] = self.member_payload(msg.guild_id, msg.author_id, with_user=False)
        return out

    def _actually_pings_everyone(self, msg: StoredMessage) -> bool:
        """``mention_everyone`` as Discord reports it: allowed and permitted."""
        if not msg.pings["everyone"] or msg.guild_id is None:
            return False
        if msg.webhook_id is not None:
            return True
        return bool(
            self.permissions(msg.guild_id, msg.author_id, msg.channel_id) & P.MENTION_EVERYONE
        )

    # ----------------------------------------------------------------- messages
    def new_message(
        self,
        channel: Channel,
        author_id: int,
        body: dict[str, Any],
        *,
        files: list[dict[str, Any]] | None = None,
        id: int | None = None,
        type: int = 0,
        via: str = "rest",
    ) -> StoredMessage:
        """Create and store a message from a create-message request body."""
        guild_id = channel.guild_id
        reply_to = None
        ref = body.get("message_reference")
        if ref and ref.get("message_id"):
            target = self.messages.get(int(ref["message_id"]))
            if target is not None:
                reply_to = target.author_id
                type = 19 if type == 0 else type
            ref = {
                "type": ref.get("type", 0),
                "message_id": str(ref["message_id"]),
                "channel_id": str(ref.get("channel_id") or channel.id),
                **({"guild_id": str(guild_id)} if guild_id else {}),
            }
        allowed = body.get("allowed_mentions")
        content = body.get("content")
        content = "" if content is None else str(content)
        msg = StoredMessage(
            id=id or self.snowflakes(),
            channel_id=channel.id,
            guild_id=guild_id,
            author_id=author_id,
            content=content,
            embeds=_clean(body.get("embeds") or []),
            components=_clean(body.get("components") or []),
            attachments=self._attachments(body, files or []),
            files=list(files or []),
            flags=int(body.get("flags") or 0),
            type=type,
            tts=bool(body.get("tts", False)),
            nonce=body.get("nonce"),
            allowed_mentions=_clean(allowed),
            pings=compute_pings(content, allowed, replied_to_user=reply_to),
            body=_clean(body),
            message_reference=ref or None,
            via=via,
        )
        self.messages[msg.id] = msg
        if not msg.ephemeral:
            channel.last_message_id = msg.id
            if channel.is_thread:
                channel.message_count += 1
        return msg

    def edit_message(
        self,
        msg: StoredMessage,
        body: dict[str, Any],
        *,
        files: list[dict[str, Any]] | None = None,
        via: str = "rest",
    ) -> StoredMessage:
        """Apply an edit body; the first edit of a loading (deferred) message counts as its send."""
        was_loading = msg.loading
        if "content" in body:
            msg.content = "" if body["content"] is None else str(body["content"])
        if "embeds" in body:
            msg.embeds = _clean(body["embeds"] or [])
        if "components" in body:
            msg.components = _clean(body["components"] or [])
        if "flags" in body and body["flags"] is not None:
            keep = msg.flags & 64
            msg.flags = (int(body["flags"]) & ~64) | keep
        if "attachments" in body or files:
            msg.attachments = self._attachments(body, files or [])
            msg.files = list(files or [])
        if "allowed_mentions" in body:
            msg.allowed_mentions = _clean(body["allowed_mentions"])
        edit_pings = compute_pings(msg.content, body.get("allowed_mentions", msg.allowed_mentions))
        if was_loading:
            msg.flags &= ~128
            msg.pings = edit_pings
            msg.body = _clean(body)
        else:
            msg.edited_timestamp = iso_now()
        msg.edits.append({"body": _clean(body), "via": via, "pings": edit_pings})
        return msg

    def _attachments(
        self, body: dict[str, Any], files: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        out = []
        described = {
            str(a.get("id")): a for a in body.get("attachments") or [] if isinstance(a, dict)
        }
        for index, f in enumerate(files):
            aid = self.snowflakes()
            meta = described.get(str(index), {})
            filename = meta.get("filename") or f.get("filename") or f"file{index}"
            out.append(
                {
                    "id": str(aid),
                    "filename": filename,
                    "size": f.get("size", 0),
                    "url": f"https://cdn.standin.invalid/attachments/{aid}/{filename}",
                    "proxy_url": f"https://media.standin.invalid/attachments/{aid}/{filename}",
                    "content_type": f.get("content_type") or "application/octet-stream",
                    "description": meta.get("description"),
                }
            )
        # Attachments kept from before an edit (entries with a real snowflake id).
        for a in body.get("attachments") or []:
            if isinstance(a, dict) and len(str(a.get("id", ""))) > 10 and "url" in a:
                out.append(_clean(a))
        return out

    # ----------------------------------------------------------------- commands
    def store_commands(
        self, commands: list[dict[str, Any]], guild_id: int | None
    ) -> list[dict[str, Any]]:
        """Bulk-overwrite commands; ids stay stable for an unchanged (type, name)."""
        previous = (
            self.global_commands if guild_id is None else self.guild_commands.get(guild_id, [])
        )
        old = {(c.get("type", 1), c["name"]): c for c in previous}
        stored = []
        for cmd in commands:
            entry = self.command_entry(cmd, guild_id, old.get((cmd.get("type", 1), cmd["name"])))
            stored.append(entry)
        if guild_id is None:
            self.global_commands = stored
        else:
            self.guild_commands[guild_id] = stored
        return _clean(stored)

    def command_entry(
        self, cmd: dict[str, Any], guild_id: int | None, old: dict[str, Any] | None
    ) -> dict[str, Any]:
        entry = _clean(cmd)
        entry.setdefault("type", 1)
        entry.setdefault("description", "")
        entry.setdefault("options", [])
        entry.setdefault("default_member_permissions", None)
        entry.setdefault("nsfw", False)
        if guild_id is None:
            entry.setdefault("contexts", None)
            entry.setdefault("integration_types", [0])
        entry["id"] = old["id"] if old else str(self.snowflakes())
        entry["application_id"] = str(self.application_id)
        if guild_id is not None:
            entry["guild_id"] = str(guild_id)
        if old is not None and _same_command(old, entry):
            entry["version"] = old["version"]
        else:
            entry["version"] = str(self.snowflakes())
        return entry

    def find_command(
        self, name: str, guild_id: int | None, command_type: int = 1
    ) -> tuple[dict[str, Any] | None, bool]:
        """(command, is_guild_command) for an invocation in ``guild_id``."""
        if guild_id is not None:
            for cmd in self.guild_commands.get(guild_id, []):
                if cmd["name"] == name and cmd.get("type", 1) == command_type:
                    return cmd, True
        for cmd in self.global_commands:
            if cmd["name"] == name and cmd.get("type", 1) == command_type:
                return cmd, False
        return None, False

    def new_token(self) -> str:
        return "aW50ZXJhY3Rpb24" + secrets.token_hex(24)


def _same_command(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ignore = {"id", "version", "application_id", "guild_id"}
    return {k: v for k, v in a.items() if k not in ignore} == {
        k: v for k, v in b.items() if k not in ignore
    }
