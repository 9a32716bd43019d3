import pytest

from bot.errors import InputError
from bot.models import Entry, Paper, Subscription
from bot.store.feeds import Feed, delete_feed, save_feed
from bot.store.papers import upsert_entries
from bot.store.subscriptions import (
    all_for_guild,
    clear_subscriptions,
    dm_closed,
    for_guilds,
    forget_guild,
    forget_role,
    forget_user,
    get_dm_status,
    list_subscriptions,
    record_dm_closed,
    reset_dm_status,
    set_dm,
)
from bot.subscriptions.matching import SubscriptionIndex
from bot.subscriptions.rules import prepare_subscription
from bot.subscriptions.service import MAX_PER_USER, add_subscription, remove_subscription

GUILD, OTHER_GUILD = 1001, 2002
USER, OTHER_USER = 11, 22
ROLE = 501


async def feed(db, guild_id: int = GUILD, channel_id: int = 9001) -> int:
    saved = await save_feed(db, Feed(guild_id=guild_id, channel_id=channel_id, name="papers"))
    assert saved.id is not None
    return saved.id


async def test_add_normalises_each_kind_and_lists_them_in_order(db):
    tag = await add_subscription(db, GUILD, USER, "tag", "computer-vision")
    keyword = await add_subscription(db, GUILD, USER, "keyword", '  Diffusion   "Video Models" ')
    author = await add_subscription(db, GUILD, USER, "author", "Yann  LeCun")
    assert tag.norm == "Computer Vision"
    assert keyword.value == 'Diffusion "Video Models"'
    assert keyword.norm == 'diffusion "video models"'
    assert dict(keyword.terms) == {'"diffusion"': ("diffus",), '"video models"': ("video", "model")}
    assert author.norm == "yann lecun"
    assert dict(author.terms) == {'authors_text : "yann lecun"': ("yann", "lecun")}
    listed = await list_subscriptions(db, GUILD, USER)
    assert listed == [tag, keyword, author]
    assert all(sub.id is not None and sub.created_at for sub in listed)


async def test_a_stored_tag_outside_the_label_list_is_known(db):
    await upsert_entries(db, [Entry(Paper("2501.00001", "T", tags=("Quantum Widgets",)))])
    sub = await add_subscription(db, GUILD, USER, "tag", "quantum-widgets")
    assert sub.norm == "Quantum Widgets"


async def test_an_unknown_tag_is_rejected_with_suggestions(db):
    with pytest.raises(InputError, match=r"unknown tag 'computer visoin'.*Computer Vision"):
        await add_subscription(db, GUILD, USER, "tag", "computer visoin")


@pytest.mark.parametrize(
    "value", ["", "   ", "-video", "tag:Robotics", "-tag:Robotics", "_", "!!! ???", '""']
)
async def test_a_keyword_without_a_searchable_word_is_rejected(db, value):
    with pytest.raises(InputError):
        await add_subscription(db, GUILD, USER, "keyword", value)
    assert await list_subscriptions(db, GUILD, USER) == []


async def test_an_empty_author_and_an_overlong_value_are_rejected(db):
    with pytest.raises(InputError, match="author"):
        await add_subscription(db, GUILD, USER, "author", " ,. ")
    with pytest.raises(InputError, match="too long"):
        await add_subscription(db, GUILD, USER, "keyword", "word " * 60)


async def test_tags_in_a_keyword_query_are_resolved_to_their_stored_names(db):
    sub = await add_subscription(db, GUILD, USER, "keyword", "agents tag:robotics -tag:audio")
    assert sub.norm == 'agents tag:"Robotics" -tag:"Audio"'
    with pytest.raises(InputError, match="unknown tag"):
        await add_subscription(db, GUILD, USER, "keyword", "agents tag:nonsense-zzz")


async def test_a_duplicate_is_reported_even_when_spelled_differently(db):
    await add_subscription(db, GUILD, USER, "keyword", "Diffusion Models")
    with pytest.raises(InputError, match="you are already subscribed to keyword `diffusion mod"):
        await add_subscription(db, GUILD, USER, "keyword", '"diffusion"   models')
    await add_subscription(db, GUILD, USER, "tag", "Robotics")
    with pytest.raises(InputError, match="already subscribed to tag `Robotics`"):
        await add_subscription(db, GUILD, USER, "tag", "robotics")
    # The same value in another kind, guild or for another user is not a duplicate.
    await add_subscription(db, GUILD, USER, "author", "Diffusion Models")
    await add_subscription(db, OTHER_GUILD, USER, "keyword", "diffusion models")
    await add_subscription(db, GUILD, OTHER_USER, "keyword", "diffusion models")


async def test_the_database_rejects_a_duplicate_with_a_null_feed(db):
    await add_subscription(db, GUILD, USER, "tag", "Robotics")
    with pytest.raises(Exception, match="UNIQUE"):
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO subscriptions (guild_id, subscriber_id, subscriber_type, kind, value,"
                " norm) VALUES (?, ?, 'user', 'tag', 'x', 'Robotics')",
                (GUILD, USER),
            )


async def test_the_per_user_limit_is_enforced_per_guild(db):
    for i in range(MAX_PER_USER):
        await add_subscription(db, GUILD, USER, "keyword", f"topic{i}")
    with pytest.raises(InputError, match=f"{MAX_PER_USER} subscriptions in this server"):
        await add_subscription(db, GUILD, USER, "keyword", "one more")
    await add_subscription(db, OTHER_GUILD, USER, "keyword", "one more")
    await add_subscription(db, GUILD, OTHER_USER, "keyword", "one more")
    assert len(await list_subscriptions(db, GUILD, USER)) == MAX_PER_USER


async def test_guilds_never_see_each_others_subscriptions(db):
    mine = await add_subscription(db, GUILD, USER, "keyword", "agents")
    theirs = await add_subscription(db, OTHER_GUILD, USER, "keyword", "robots")
    assert await list_subscriptions(db, GUILD, USER) == [mine]
    assert await all_for_guild(db, GUILD) == [mine]
    assert await all_for_guild(db, OTHER_GUILD) == [theirs]
    with pytest.raises(InputError, match="not subscribed"):
        await remove_subscription(db, GUILD, USER, subscription_id=theirs.id)
    assert await clear_subscriptions(db, GUILD, USER) == 1
    assert await all_for_guild(db, OTHER_GUILD) == [theirs]
    assert await for_guilds(db, [GUILD, OTHER_GUILD]) == [theirs]


async def test_a_feed_of_another_guild_cannot_be_used(db):
    other_feed = await feed(db, OTHER_GUILD)
    with pytest.raises(InputError, match="feed does not exist in this server"):
        await add_subscription(
            db, GUILD, ROLE, "tag", "Robotics", subscriber_type="role", feed_id=other_feed
        )


async def test_role_subscriptions_are_per_feed_and_go_with_the_feed(db):
    feed_id = await feed(db)
    with pytest.raises(InputError, match="belongs to a feed"):
        await add_subscription(db, GUILD, ROLE, "tag", "Robotics", subscriber_type="role")
    with pytest.raises(InputError, match="direct messages"):
        await add_subscription(
            db, GUILD, ROLE, "tag", "Robotics", subscriber_type="role", feed_id=feed_id, dm=True
        )
    sub = await add_subscription(
        db, GUILD, ROLE, "tag", "Robotics", subscriber_type="role", feed_id=feed_id
    )
    assert sub.feed_id == feed_id and sub.subscriber_type == "role"
    with pytest.raises(InputError, match="that role is already subscribed"):
        await add_subscription(
            db, GUILD, ROLE, "tag", "robotics", subscriber_type="role", feed_id=feed_id
        )
    assert await list_subscriptions(db, GUILD, ROLE, subscriber_type="role") == [sub]
    assert await delete_feed(db, GUILD, 9001)
    assert await all_for_guild(db, GUILD) == []


async def test_remove_by_id_or_by_value(db):
    first = await add_subscription(db, GUILD, USER, "keyword", "Diffusion Models")
    second = await add_subscription(db, GUILD, USER, "tag", "Robotics")
    third = await add_subscription(db, GUILD, USER, "author", "Yann LeCun")
    assert await remove_subscription(db, GUILD, USER, kind="keyword", value="diffusion  MODELS")
    assert await remove_subscription(db, GUILD, USER, kind="tag", value="robotics") == second
    assert await remove_subscription(db, GUILD, USER, subscription_id=third.id) == third
    with pytest.raises(InputError, match="you are not subscribed to keyword `diffusion models`"):
        await remove_subscription(db, GUILD, USER, kind="keyword", value="Diffusion Models")
    with pytest.raises(InputError, match="which subscription"):
        await remove_subscription(db, GUILD, USER)
    assert first.id is not None
    assert await list_subscriptions(db, GUILD, USER) == []


async def test_forget_user_deletes_everything_about_them_in_every_guild(db):
    await add_subscription(db, GUILD, USER, "keyword", "agents", dm=True)
    await add_subscription(db, OTHER_GUILD, USER, "tag", "Robotics")
    kept = await add_subscription(db, GUILD, OTHER_USER, "keyword", "agents")
    feed_id = await feed(db)
    role = await add_subscription(  # a role whose id equals the user's is not the user
        db, GUILD, USER, "tag", "Robotics", subscriber_type="role", feed_id=feed_id
    )
    await record_dm_closed(db, USER, "403 Cannot send messages to this user")
    assert await forget_user(db, USER) == 2
    assert await all_for_guild(db, OTHER_GUILD) == []
    assert await all_for_guild(db, GUILD) == [kept, role]
    assert await get_dm_status(db, USER) is None
    assert not await dm_closed(db, USER)


async def test_forget_role_and_guild(db):
    feed_id = await feed(db)
    await add_subscription(db, GUILD, ROLE, "tag", "Audio", subscriber_type="role", feed_id=feed_id)
    user_sub = await add_subscription(db, GUILD, USER, "tag", "Audio")
    other = await add_subscription(db, OTHER_GUILD, USER, "tag", "Audio")
    assert await forget_role(db, OTHER_GUILD, ROLE) == 0
    assert await forget_role(db, GUILD, ROLE) == 1
    assert await all_for_guild(db, GUILD) == [user_sub]
    assert await forget_guild(db, GUILD) == 1
    assert await all_for_guild(db, OTHER_GUILD) == [other]


async def test_a_closed_dm_is_recorded_until_the_user_re_enables_dms(db):
    await add_subscription(db, GUILD, USER, "keyword", "agents", dm=True)
    assert not await dm_closed(db, USER)
    await record_dm_closed(db, USER, "403 Forbidden " + "x" * 1000)
    assert await dm_closed(db, USER)
    status = await get_dm_status(db, USER)
    assert status is not None and status.closed and status.closed_at
    assert status.last_error is not None and len(status.last_error) == 500
    await record_dm_closed(db, USER, "again")  # recording twice updates the row
    assert (await get_dm_status(db, USER)).last_error == "again"
    assert await set_dm(db, GUILD, USER, False) == 1
    assert await dm_closed(db, USER)  # turning DMs off does not clear the failure
    assert await set_dm(db, GUILD, USER, True) == 1
    assert not await dm_closed(db, USER)
    await record_dm_closed(db, USER, "403")
    await reset_dm_status(db, USER)
    assert not await dm_closed(db, USER)


async def test_subscribing_with_dm_again_re_enables_dms(db):
    await add_subscription(db, GUILD, USER, "keyword", "agents", dm=True)
    await record_dm_closed(db, USER, "403")
    await add_subscription(db, GUILD, USER, "keyword", "robots")
    assert await dm_closed(db, USER)
    await add_subscription(db, GUILD, USER, "keyword", "planning", dm=True)
    assert not await dm_closed(db, USER)


async def test_stored_subscriptions_build_an_index_without_tokenizing_again(db):
    await add_subscription(db, GUILD, USER, "keyword", "running robots")
    subs = await all_for_guild(db, GUILD)
    assert isinstance(subs[0], Subscription)
    index = SubscriptionIndex.build(subs)
    papers = [Paper("2501.00001", "A robot that runs", abstract="")]
    assert list(index.match(papers).values()) == [tuple(papers)]


def test_prepare_subscription_is_pure_and_reports_words_fts_cannot_find():
    sub = prepare_subscription(GUILD, USER, "keyword", "Graph OR networks")
    assert sub.norm == "graph OR networks" and sub.id is None
    with pytest.raises(InputError, match="no word the search can find"):
        prepare_subscription(GUILD, USER, "keyword", "agents _")
