"""How subscriptions read in replies and autocomplete choices."""

from __future__ import annotations

from bot.models import Subscription
from bot.subscriptions.render import choice_name, describe


def sub(**fields) -> Subscription:
    base = dict(guild_id=1, subscriber_id=7, kind="tag", value="robotics", norm="Robotics")
    return Subscription(**{**base, **fields})


def test_a_user_subscription_names_what_it_matches_and_how_it_arrives():
    assert describe(sub()) == "tag `Robotics`"
    assert describe(sub(dm=True)) == "tag `Robotics` (by DM)"
    assert describe(sub(feed_id=3)) == "tag `Robotics` (one feed)"


def test_a_role_subscription_names_the_role_and_is_marked_in_choices():
    role = sub(subscriber_type="role", subscriber_id=55, feed_id=3)
    assert describe(role) == "tag `Robotics` for <@&55> (in one digest channel)"
    assert choice_name(role) == "tag `Robotics` (role)"
    assert choice_name(sub()) == "tag `Robotics`"


def test_a_mention_in_a_keyword_cannot_ping_and_stays_in_its_code_span():
    text = describe(sub(kind="keyword", norm="**bold** @everyone `x`"))
    assert "@everyone" not in text
    assert text.startswith("keyword `") and text.endswith("`")
    assert text.count("`") == 2
