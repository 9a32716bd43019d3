"""A local stand-in for Discord (REST + gateway) to run the real discord.py client against.

See ``server.StandIn`` for the test-driving API, and ``../shared/notes/discord-standin.md``
(beside the checkout) for the facts it is built on.
"""

from . import perms
from .interactions import InteractionHandle
from .mentions import Pings, compute_pings
from .seams import discord_py_pointed_at, point_discord_py_at, running_bot
from .server import RecordedRequest, StandIn, running_standin
from .snowflake import SnowflakeFactory, make_snowflake, snowflake_time
from .state import Channel, Guild, Member, Role, StoredMessage, User

__all__ = [
    "Channel",
    "Guild",
    "InteractionHandle",
    "Member",
    "Pings",
    "RecordedRequest",
    "Role",
    "SnowflakeFactory",
    "StandIn",
    "StoredMessage",
    "User",
    "compute_pings",
    "discord_py_pointed_at",
    "make_snowflake",
    "perms",
    "point_discord_py_at",
    "running_bot",
    "running_standin",
    "snowflake_time",
]
