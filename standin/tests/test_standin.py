"""The Discord stand-in works with the real discord.py client (standin/)."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
import yarl
from discord import app_commands
from discord.ext import commands

from standin import (
    StandIn,
    compute_pings,
    discord_py_pointed_at,
    perms,
    point_discord_py_at,
    running_bot,
    running_standin,
)
from standin.fixtures import discord_standin_fixture, standin_fixture  # noqa: F401
from standin.ratelimit import Window

TOPICS = ["machine translation", "machine learning", "mechanistic interpretability", "retrieval"]


class MoreView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.button(label="Show more", custom_id="more")
    async def more(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content="expanded", view=None)


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    text = discord.ui.TextInput(label="What do you think?", custom_id="feedback_text")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"thanks: {self.text.value}", ephemeral=True)


class StandInBot(commands.Bot):
    """A minimal bot with a few app commands, only for exercising the stand-in."""

    def __init__(self, guild_id: int, intents: discord.Intents | None = None) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents or discord.Intents.default(),
            guild_ready_timeout=0.1,
            chunk_guilds_at_startup=False,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.guild_id = guild_id
        self.resumed = asyncio.Event()
        self.seen: list[discord.Message] = []

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def setup_hook(self) -> None:
        tree = self.tree
        guild = discord.Object(self.guild_id)

        @app_commands.command(name="ping", description="Check that the bot answers")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong", ephemeral=True)

        @app_commands.command(name="slow", description="Defer, then follow up")
        async def slow(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await asyncio.sleep(0.05)
            await interaction.followup.send("done")

        @app_commands.command(name="topic", description="Pick a topic")
        @app_commands.describe(query="Start typing a topic")
        async def topic(interaction: discord.Interaction, query: str) -> None:
            await interaction.response.send_message(f"topic: {query}")

        @topic.autocomplete("query")
        async def topic_complete(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=t, value=t) for t in TOPICS if t.startswith(current)]

        @app_commands.command(name="more", description="A message with a button")
        async def more(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("A paper", view=MoreView())

        @app_commands.command(name="announce", description="Post to a channel")
        @app_commands.describe(channel="Where to post", text="What to post")
        async def announce(
            interaction: discord.Interaction, channel: discord.TextChannel, text: str
        ) -> None:
            await channel.send(text)
            await interaction.response.send_message("sent", ephemeral=True)

        @app_commands.command(name="purge", description="Admins only")
        @app_commands.default_permissions(manage_guild=True)
        async def purge(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("purged", ephemeral=True)

        @app_commands.command(name="feedback", description="Open a form")
        async def feedback(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(FeedbackModal())

        sub = app_commands.Group(name="sub", description="Subscriptions")

        @sub.command(name="add", description="Subscribe to a keyword")
        @app_commands.describe(keyword="Keyword", limit="How many per day")
        async def sub_add(
            interaction: discord.Interaction, keyword: str, limit: app_commands.Range[int, 1, 10]
        ) -> None:
            await interaction.response.send_message(f"{keyword}:{limit}", ephemeral=True)

        for command in (ping, slow, topic, more, announce, purge, feedback, sub):
            tree.add_command(command, guild=guild)

        @tree.command(name="hello", description="A global command")
        async def hello(interaction: discord.Interaction) -> None:
            where = "a DM" if isinstance(interaction.channel, discord.DMChannel) else "a guild"
            await interaction.response.send_message(f"hi {interaction.user.name} in {where}")


@pytest.fixture
async def bot(standin: StandIn) -> AsyncIterator[StandInBot]:
    async with running_bot(StandInBot(standin.guild.id), standin.token) as client:
        yield client


@pytest.fixture
async def synced(standin: StandIn, bot: StandInBot) -> StandInBot:
    await bot.tree.sync(guild=discord.Object(standin.guild.id))
    return bot


# --------------------------------------------------------------------------- seams and login


def test_discord_py_seams_exist() -> None:
    assert isinstance(discord.http.Route.BASE, str)
    assert discord.http.Route.BASE.endswith("/api/v10")
    assert isinstance(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY, yarl.URL)
    before = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    restore = point_discord_py_at("http://127.0.0.1:1234")
    try:
        assert discord.http.Route.BASE == "http://127.0.0.1:1234/api/v10"
        assert (
            discord.http.Route("GET", "/users/@me").url == "http://127.0.0.1:1234/api/v10/users/@me"
        )
        gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        assert str(gateway) == "ws://127.0.0.1:1234/gateway"
    finally:
        restore()
    assert before == (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)


async def test_json_content_type_is_exact_and_unknown_routes_are_recorded(
    discord_standin: StandIn,
) -> None:
    standin = discord_standin
    headers = {"Authorization": f"Bot {standin.token}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(standin.api_base + "/users/@me", headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
        async with session.get(standin.api_base + "/users/@me") as resp:
            assert resp.status == 401
        async with session.get(standin.api_base + "/no/such/route", headers=headers) as resp:
            assert resp.status == 404
            assert await resp.json() == {"message": "404: Not Found", "code": 0}
    assert [r.path for r in standin.unknown_routes()] == ["/no/such/route"]
    with pytest.raises(AssertionError, match="unknown routes"):
        standin.assert_clean()


async def test_bot_logs_in_and_sees_guild_channels_and_roles(
    standin: StandIn, bot: StandInBot
) -> None:
    assert bot.user is not None and bot.user.id == standin.bot_user.id
    assert bot.application_id == standin.application_id
    guild = bot.get_guild(standin.guild.id)
    assert guild is not None and guild.name == "Paper Lab"
    channel = guild.get_channel(standin.text_channel.id)
    assert isinstance(channel, discord.TextChannel) and channel.name == "papers"
    forum = guild.get_channel(standin.forum_channel.id)
    assert isinstance(forum, discord.ForumChannel)
    assert [t.name for t in forum.available_tags] == ["cs.CL"]
    admin = guild.get_role(standin.admin_role.id)
    assert admin is not None and admin.permissions.manage_guild
    assert guild.default_role.id == guild.id
    assert guild.me is not None and channel.permissions_for(guild.me).send_messages
    assert not channel.permissions_for(guild.me).mention_everyone

    identify = await standin.wait_for_identify()
    assert identify["token"] == "<redacted>"
    assert identify["intents"] == discord.Intents.default().value
    assert standin.requested_privileged_intents() == []
    assert [(r.method, r.path) for r in standin.requests[:2]] == [
        ("GET", "/users/@me"),
        ("GET", "/oauth2/applications/@me"),
    ]
    standin.assert_clean()


async def test_wrong_token_raises_login_failure(standin: StandIn) -> None:
    client = StandInBot(standin.guild.id)
    with pytest.raises(discord.LoginFailure):
        async with running_bot(client, "not-the-token"):
            pass
    assert standin.requests[0].status == 401


async def test_tree_sync_stores_commands_with_stable_ids(standin: StandIn, bot: StandInBot) -> None:
    guild = discord.Object(standin.guild.id)
    first = await bot.tree.sync(guild=guild)
    assert {c.name for c in first} == {
        "ping", "slow", "topic", "more", "announce", "purge", "feedback", "sub"
    }  # fmt: skip
    stored = standin.world.guild_commands[standin.guild.id]
    assert all(c["application_id"] == str(standin.application_id) for c in stored)
    second = await bot.tree.sync(guild=guild)
    assert {c.name: c.id for c in first} == {c.name: c.id for c in second}
    assert standin.world.global_commands == []
    standin.assert_clean()


# --------------------------------------------------------------------------- interactions


async def test_slash_command_round_trip_ephemeral(standin: StandIn, synced: StandInBot) -> None:
    handle = await standin.slash("ping")
    callback = await handle.wait_callback()
    assert callback["type"] == 4
    assert callback["data"]["content"] == "pong"
    assert callback["data"]["flags"] & 64
    assert handle.original is not None and handle.original.ephemeral
    assert standin.messages_in(standin.text_channel.id) == []  # ephemeral: not in the channel
    (request,) = standin.requests_to("POST", r"^/interactions/")
    assert request.query == {"with_response": "1"}
    assert request.headers["authorization"] is None  # callbacks carry no bot token
    standin.assert_clean()


async def test_subcommand_options_are_typed_from_the_synced_schema(
    standin: StandIn, synced: StandInBot
) -> None:
    handle = await standin.slash("sub add", {"keyword": "llm", "limit": 3})
    assert (await handle.wait_callback())["data"]["content"] == "llm:3"
    with pytest.raises(ValueError, match="required options"):
        await standin.slash("sub add", {"keyword": "llm"})


async def test_defer_then_follow_up(standin: StandIn, synced: StandInBot) -> None:
    handle = await standin.slash("slow")
    assert (await handle.wait_callback())["type"] == 5
    (followup,) = await handle.wait_followups(1)
    assert followup.content == "done"
    assert handle.original is followup and not followup.loading  # filled the "thinking" message
    assert [m.content for m in standin.messages_in(standin.text_channel.id)] == ["done"]
    standin.assert_clean()


async def test_autocomplete_returns_choices(standin: StandIn, synced: StandInBot) -> None:
    handle = await standin.autocomplete("topic", {"query": "mach"}, focused="query")
    callback = await handle.wait_callback()
    assert callback["type"] == 8
    assert [c["value"] for c in handle.choices] == ["machine translation", "machine learning"]
    standin.assert_clean()


async def test_button_click_updates_the_message(standin: StandIn, synced: StandInBot) -> None:
    handle = await standin.slash("more")
    await handle.wait_callback()
    message = handle.original
    assert message is not None and message.components[0]["components"][0]["custom_id"] == "more"
    click = await standin.click(message.id, "more")
    assert (await click.wait_callback())["type"] == 7
    assert message.content == "expanded" and message.components == []
    standin.assert_clean()


async def test_modal_submit_round_trip(standin: StandIn, synced: StandInBot) -> None:
    handle = await standin.slash("feedback")
    callback = await handle.wait_callback()
    assert callback["type"] == 9 and callback["data"]["title"] == "Feedback"
    submit = await standin.send_interaction(
        standin.guild.id,
        standin.text_channel.id,
        standin.plain_user.id,
        type=5,
        custom_id=callback["data"]["custom_id"],
        values={"feedback_text": "great bot"},
    )
    assert (await submit.wait_callback())["data"]["content"] == "thanks: great bot"
    standin.assert_clean()


async def test_default_member_permissions_hide_admin_commands(
    standin: StandIn, synced: StandInBot
) -> None:
    with pytest.raises(PermissionError):
        await standin.slash("purge")  # bob has no Manage Server
    handle = await standin.slash("purge", user_id=standin.admin_user.id)
    assert (await handle.wait_callback())["data"]["content"] == "purged"
    forced = await standin.slash("purge", check_visibility=False)  # e.g. a stale client
    assert (await forced.wait_callback())["data"]["content"] == "purged"


async def test_late_interaction_answer_is_rejected(standin: StandIn, synced: StandInBot) -> None:
    standin.interaction_deadline = 0.0  # every answer is "too late"
    handle = await standin.slash("ping")
    await standin.wait_until(lambda: handle.rejected, 5, "rejected callback")
    assert not handle.responded
    assert [r.error_code for r in standin.unexpected_4xx()] == [10062]


# --------------------------------------------------------------------------- messages


async def test_channel_send_records_allowed_mentions_and_pings(
    standin: StandIn, synced: StandInBot
) -> None:
    user = standin.plain_user
    text = f"new paper for {user.mention} @everyone {standin.admin_role.mention}"
    handle = await standin.slash("announce", {"channel": standin.other_channel.id, "text": text})
    assert (await handle.wait_callback())["data"]["content"] == "sent"
    (message,) = standin.messages_in(standin.other_channel.id)
    assert message.content == text
    assert message.allowed_mentions == {"parse": []}  # the bot's AllowedMentions.none()
    assert message.pings == {"everyone": False, "users": [], "roles": [], "replied_user": False}

    channel = synced.get_channel(standin.other_channel.id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send(
        text, allowed_mentions=discord.AllowedMentions(users=[discord.Object(user.id)])
    )
    stored = standin.message(sent.id)
    assert stored.pings["users"] == [user.id] and not stored.pings["everyone"]
    assert [m.id for m in sent.mentions] == [user.id]
    assert standin.pinging_messages() == [stored]

    edited = await sent.edit(content="edited <@&1>")
    assert edited.content == "edited <@&1>" and stored.content == "edited <@&1>"
    assert stored.edited_timestamp is not None and len(stored.edits) == 1
    await sent.delete()
    assert stored.deleted and stored not in standin.messages_in(channel.id)
    standin.assert_clean()


def test_pings_follow_discord_rules_without_allowed_mentions() -> None:
    pings = compute_pings("<@!1> <@&2> @here", None)
    assert pings == {"everyone": True, "users": [1], "roles": [2], "replied_user": False}
    parse_users = compute_pings("<@1> <@&2> @everyone", {"parse": ["users"]})
    assert parse_users == {"everyone": False, "users": [1], "roles": [], "replied_user": False}
    reply = compute_pings("hi", {"parse": [], "replied_user": True}, replied_to_user=7)
    assert reply["users"] == [7] and reply["replied_user"]


async def test_discord_limits_are_enforced(standin: StandIn, bot: StandInBot) -> None:
    channel = bot.get_channel(standin.text_channel.id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert too_long.value.code == 50035 and too_long.value.status == 400
    with pytest.raises(discord.HTTPException) as too_big:
        await channel.send(embeds=[discord.Embed(description="y" * 4000) for _ in range(2)])
    assert too_big.value.code == 50035
    assert standin.messages_in(channel.id) == []


async def test_forum_post_and_thread_from_message(standin: StandIn, bot: StandInBot) -> None:
    forum = bot.get_channel(standin.forum_channel.id)
    assert isinstance(forum, discord.ForumChannel)
    created = await forum.create_thread(
        name="Attention Is All You Need", content="discussion", applied_tags=forum.available_tags
    )
    assert created.thread.parent_id == forum.id and created.message.content == "discussion"
    (thread,) = standin.threads_in(forum.id)
    assert thread.type == 11 and thread.name == "Attention Is All You Need"
    assert [m.content for m in standin.messages_in(thread.id)] == ["discussion"]

    channel = bot.get_channel(standin.text_channel.id)
    assert isinstance(channel, discord.TextChannel)
    message = await channel.send("paper")
    side = await message.create_thread(name="notes")
    await side.send("first note")
    assert side.id == message.id
    assert [m.content for m in standin.messages_in(side.id)] == ["first note"]
    standin.assert_clean()


# --------------------------------------------------------------------------- faults


async def test_429_is_retried_and_delivered_once(standin: StandIn, bot: StandInBot) -> None:
    standin.inject("POST", r"^/channels/\d+/messages$", 429, retry_after=0.05)
    channel = bot.get_channel(standin.text_channel.id)
    assert isinstance(channel, discord.TextChannel)
    await channel.send("hello")
    statuses = [r.status for r in standin.requests_to("POST", r"^/channels/\d+/messages$")]
    assert statuses == [429, 200]
    assert [m.content for m in standin.messages_in(channel.id)] == ["hello"]
    standin.assert_clean()


async def test_500_is_retried_by_discord_py(standin: StandIn, bot: StandInBot) -> None:
    standin.inject("POST", r"^/channels/\d+/messages$", 500)
    channel = bot.get_channel(standin.text_channel.id)
    assert isinstance(channel, discord.TextChannel)
    await channel.send("after a 500")  # discord.py sleeps 1 s, then retries
    statuses = [r.status for r in standin.requests_to("POST", r"^/channels/\d+/messages$")]
    assert statuses == [500, 200]
    assert len(standin.messages_in(channel.id)) == 1


async def test_403_raises_forbidden(standin: StandIn, bot: StandInBot) -> None:
    channel = bot.get_channel(standin.text_channel.id)
    assert isinstance(channel, discord.TextChannel)
    standin.inject("POST", r"^/channels/\d+/messages$", 403)
    with pytest.raises(discord.Forbidden) as injected:
        await channel.send("nope")
    assert injected.value.code == 50013
    # A real permission overwrite gives the same answer, without injection.
    standin.set_overwrite(channel.id, standin.bot_role.id, deny=perms.SEND_MESSAGES)
    with pytest.raises(discord.Forbidden) as denied:
        await channel.send("nope")
    assert denied.value.code == 50013
    assert standin.messages_in(channel.id) == []
    assert len(standin.unexpected_4xx()) == 1
    standin.assert_clean(allow=[50013])


async def test_slow_responses_and_503(standin: StandIn, bot: StandInBot) -> None:
    channel = bot.get_channel(standin.text_channel.id)
    assert isinstance(channel, discord.TextChannel)
    standin.inject("POST", r"^/channels/\d+/messages$", delay=0.5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(channel.send("slow"), timeout=0.1)
    standin.inject("GET", r"^/channels/\d+$", 503)
    with pytest.raises(discord.DiscordServerError):  # discord.py does not retry a 503
        await bot.fetch_channel(channel.id)
    assert (await bot.fetch_channel(channel.id)).id == channel.id
    assert all(f.exhausted for f in standin.faults)


async def test_closed_dms_answer_50007(standin: StandIn, bot: StandInBot) -> None:
    user = await bot.fetch_user(standin.plain_user.id)
    await user.send("hello by DM")
    standin.close_dms(user.id)
    with pytest.raises(discord.Forbidden) as closed:
        await user.send("again")
    assert closed.value.code == 50007
    dm = standin.world.dm_by_user[user.id]
    assert [m.content for m in standin.messages_in(dm)] == ["hello by DM"]
    standin.assert_clean(allow=[50007])


async def test_member_fetch_404_after_member_left(standin: StandIn, bot: StandInBot) -> None:
    guild = bot.get_guild(standin.guild.id)
    assert guild is not None
    member = await guild.fetch_member(standin.plain_user.id)
    assert member.name == "bob"
    await standin.member_leaves(standin.guild.id, standin.plain_user.id)
    # No members intent: Discord (and the stand-in) do not send GUILD_MEMBER_REMOVE.
    assert [e for e, _ in standin.dropped_events] == ["GUILD_MEMBER_REMOVE"]
    with pytest.raises(discord.NotFound) as gone:
        await guild.fetch_member(standin.plain_user.id)
    assert gone.value.code == 10007


async def test_user_messages_arrive_without_content_unless_the_bot_is_mentioned(
    standin: StandIn, bot: StandInBot
) -> None:
    channel_id = standin.text_channel.id
    await standin.post_user_message(channel_id, standin.plain_user.id, "just chatting")
    await standin.post_user_message(
        channel_id, standin.plain_user.id, f"{standin.bot_user.mention} hello"
    )
    await standin.wait_until(lambda: len(bot.seen) == 2, 5, "two on_message events")
    assert [m.content for m in bot.seen] == ["", f"<@{standin.bot_user.id}> hello"]
    assert bot.seen[0].author.id == standin.plain_user.id
    assert bot.seen[1].mentions[0].id == standin.bot_user.id


async def test_gateway_reconnect_resumes_session(standin: StandIn, bot: StandInBot) -> None:
    session = await standin.wait_ready()
    await standin.send_reconnect()
    await asyncio.wait_for(bot.resumed.wait(), 5)
    assert session.resumes == 1 and len(standin.identify_payloads) == 1


# --------------------------------------------------------------------------- rate limits


async def test_enforced_limits_pace_discord_py_and_count_exactly() -> None:
    async with running_standin(
        enforce_limits=True, channel_limit=(2, 0.3), global_limit=(8, 0.2)
    ) as standin:
        channels = [standin.add_text_channel(standin.guild.id, f"feed-{i}") for i in range(6)]
        with discord_py_pointed_at(standin.url):
            async with running_bot(StandInBot(standin.guild.id), standin.token) as client:
                targets = [client.get_channel(c.id) for c in channels]
                assert all(isinstance(t, discord.TextChannel) for t in targets)
                started = time.monotonic()
                await asyncio.gather(
                    *(t.send(f"paper {n}") for t in targets for n in range(3))  # type: ignore[union-attr]
                )
                elapsed = time.monotonic() - started
        for channel in channels:
            assert sorted(m.content for m in standin.messages_in(channel.id)) == [
                "paper 0",
                "paper 1",
                "paper 2",
            ]
        posts = standin.requests_to("POST", r"^/channels/\d+/messages$")
        assert sum(r.status == 200 for r in posts) == 18
        assert all(r.status in (200, 429) for r in posts)
        # 3 messages with 2 per 0.3 s per channel need at least one window wait.
        assert elapsed >= 0.3
        assert all("X-RateLimit-Remaining" in r.response_headers for r in posts if r.status == 200)
        limited = [r for r in posts if r.status == 429]
        assert limited == [r for r in standin.rate_limit_hits() if r in posts]
        assert all(r.response_headers["Via"] and r.response["retry_after"] > 0 for r in limited)
        standin.assert_clean()


def test_fixed_windows_count_exactly() -> None:
    window = Window(limit=2, period=5.0)
    assert window.hit(100.0) == (True, 1, 5.0)
    assert window.hit(101.0) == (True, 0, 4.0)
    assert window.hit(104.5) == (False, 0, 0.5)
    assert window.hit(105.0) == (True, 1, 5.0)  # a new window opens


async def test_files_use_multipart_and_nonces_deduplicate(
    standin: StandIn, bot: StandInBot
) -> None:
    channel = bot.get_channel(standin.text_channel.id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("with file", file=discord.File(io.BytesIO(b"a,b\n1,2\n"), "p.csv"))
    (request,) = standin.requests_to("POST", r"^/channels/\d+/messages$")
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert request.json["content"] == "with file"
    stored = standin.message(sent.id)
    assert stored.files[0]["data"] == b"a,b\n1,2\n"
    assert sent.attachments[0].filename == "p.csv" and sent.attachments[0].size == 8

    first = await channel.send("once", nonce=1234)
    again = await channel.send("once", nonce=1234)
    assert first.id == again.id and standin.deduplicated_nonces == 1
    assert [m.content for m in standin.messages_in(channel.id)] == ["with file", "once"]


async def test_nonces_are_forgotten_after_their_window(standin: StandIn, bot: StandInBot) -> None:
    channel = bot.get_channel(standin.text_channel.id)
    assert isinstance(channel, discord.TextChannel)
    standin.nonce_ttl = 0.0
    first = await channel.send("twice", nonce=99)
    again = await channel.send("twice", nonce=99)
    assert first.id != again.id and standin.deduplicated_nonces == 0


async def test_a_landed_request_can_hang_after_posting(standin: StandIn, bot: StandInBot) -> None:
    channel = bot.get_channel(standin.text_channel.id)
    assert isinstance(channel, discord.TextChannel)
    fault = standin.inject("POST", r"^/channels/\d+/messages$", None, delay=30.0, land=True)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await channel.send("landed")
    assert fault.used == 1
    assert [m.content for m in standin.messages_in(channel.id)] == ["landed"]
    with pytest.raises(ValueError):
        standin.inject("POST", "x", 500, land=True)


async def test_a_guild_outage_hides_the_guild_until_it_is_back(
    standin: StandIn, bot: StandInBot
) -> None:
    guild = standin.guild.id
    assert await standin.guild_outage(guild) == 1
    await standin.wait_until(lambda: bot.get_guild(guild).unavailable, what="the outage")
    assert bot.get_guild(guild) is not None, "an outage is not a removal"
    assert await standin.guild_outage(guild, down=False) == 1
    await standin.wait_until(lambda: not bot.get_guild(guild).unavailable, what="the return")


async def test_privileged_intents_can_be_refused(standin: StandIn) -> None:
    standin.reject_privileged_intents = True
    intents = discord.Intents.default()
    intents.members = True
    client = StandInBot(standin.guild.id, intents=intents)
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with running_bot(client, standin.token):
            pass
    assert standin.requested_privileged_intents() == ["members"]


async def test_global_command_from_a_dm(standin: StandIn, bot: StandInBot) -> None:
    await bot.tree.sync()  # global commands: only /hello
    assert [c["name"] for c in standin.world.global_commands] == ["hello"]
    handle = await standin.send_interaction(None, None, standin.plain_user.id, "hello")
    callback = await handle.wait_callback()
    assert handle.guild_id is None
    assert callback["data"]["content"] == "hi bob in a DM"
    standin.assert_clean()
