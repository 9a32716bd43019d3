import re

import pytest

from bot.delivery.mentions import (
    MAX_CONTENT,
    MAX_MENTION_IDS,
    dm_matches,
    dm_messages,
    mention_line,
    mention_messages,
    paper_link,
)
from bot.models import Paper
from bot.subscriptions.matching import SubscriberKey
from tests.discord_standin.mentions import compute_pings

GUILD = 1


def paper(n: int, title: str | None = None) -> Paper:
    return Paper(f"2501.{n:05d}", title if title is not None else f"Paper number {n}")


def user(uid: int, feed_id=None, dm=False) -> SubscriberKey:
    return SubscriberKey(GUILD, "user", uid, feed_id, dm)


def role(rid: int, feed_id=7) -> SubscriberKey:
    return SubscriberKey(GUILD, "role", rid, feed_id, False)


def mentioned(messages) -> tuple[list[int], list[int]]:
    """Every user and role the messages would actually ping, in order."""
    users, roles = [], []
    for message in messages:
        pings = compute_pings(message["content"], message["allowed_mentions"])
        assert not pings["everyone"] and not pings["replied_user"]
        users += pings["users"]
        roles += pings["roles"]
    return users, roles


def test_each_subscriber_is_mentioned_once_with_their_papers():
    matches = {
        user(11): (paper(1), paper(2)),
        role(501): (paper(2),),
        user(11, feed_id=7): (paper(2), paper(3)),  # the same user through a feed subscription
    }
    messages = mention_messages(matches)
    assert len(messages) == 1
    content = messages[0]["content"]
    assert content.count("<@11>") == 1 and content.count("<@&501>") == 1
    line = next(line for line in content.splitlines() if line.startswith("<@11>"))
    assert "[Paper number 1](<https://arxiv.org/abs/2501.00001>)" in line
    assert line.count("arxiv.org") == 3
    assert messages[0]["allowed_mentions"] == {
        "parse": [],
        "users": [11],
        "roles": [501],
        "replied_user": False,
    }
    assert mentioned(messages) == ([11], [501])


def test_dm_subscribers_and_members_who_left_are_not_mentioned():
    matches = {
        user(1): (paper(1),),
        user(2): (paper(1),),
        user(3, dm=True): (paper(1),),
        role(9): (paper(1),),
        role(10): (paper(1),),
    }
    messages = mention_messages(matches, members_present={1, 3}, roles_present={9})
    assert mentioned(messages) == ([1], [9])
    assert mention_messages({user(2): (paper(1),)}, members_present={1}) == []
    assert mention_messages({}) == []


def test_messages_split_at_2000_characters_between_subscribers():
    long_title = "A very long and descriptive title about diffusion models " * 2
    papers = tuple(paper(i, long_title) for i in range(1, 6))
    matches = {user(uid): papers for uid in range(1, 40)}
    messages = mention_messages(matches, header="Papers for your subscriptions:")
    assert len(messages) > 1
    assert messages[0]["content"].startswith("Papers for your subscriptions:\n")
    for message in messages:
        assert len(message["content"]) <= MAX_CONTENT
        in_content = [int(x) for x in re.findall(r"<@(\d+)>", message["content"])]
        assert message["allowed_mentions"]["users"] == in_content
    assert mentioned(messages)[0] == list(range(1, 40))


def test_at_most_100_users_and_100_roles_per_message():
    matches = {user(uid): (paper(1, "x"),) for uid in range(1, 251)}
    matches.update({role(rid): (paper(1, "x"),) for rid in range(1000, 1150)})
    messages = mention_messages(matches)
    for message in messages:
        assert len(message["allowed_mentions"]["users"]) <= MAX_MENTION_IDS
        assert len(message["allowed_mentions"]["roles"]) <= MAX_MENTION_IDS
        assert len(message["content"]) <= MAX_CONTENT
    users, roles = mentioned(messages)
    assert users == list(range(1, 251)) and roles == list(range(1000, 1150))


def test_one_subscriber_with_too_many_papers_gets_and_n_more():
    papers = tuple(paper(i, "word " * 40) for i in range(1, 200))
    messages = mention_messages({user(5): papers}, max_papers=500)
    assert len(messages) == 1
    content = messages[0]["content"]
    assert len(content) <= MAX_CONTENT
    shown = content.count("arxiv.org")
    assert 0 < shown < 199 and content.endswith(f" and {199 - shown} more")
    capped = mention_messages({user(5): papers[:20]})[0]["content"]
    assert capped.count("arxiv.org") == 10 and capped.endswith(" and 10 more")


def test_mention_line_fits_its_limit():
    papers = [paper(i, "t" * 70) for i in range(1, 10)]
    for limit in (40, 150, 400, 2000):
        assert len(mention_line("<@1>", papers, limit)) <= limit


ADVERSARIAL = [
    "@everyone look at this",
    "@here <@&123> and <@456> and <@!789> <#42>",
    "[click me](http://evil.example) **bold** `code` ||spoiler||",
    "](<http://evil>) [x](http://evil) @EVERYONE",
    "> quote\n# heading\n- item",
]


def test_paper_text_never_pings_or_links():
    matches = {user(1): tuple(paper(i, t) for i, t in enumerate(ADVERSARIAL, 1))}
    messages = mention_messages(matches, header="@everyone <@&5> feed")
    for message in messages:
        content = message["content"]
        assert "@everyone" not in content and "@here" not in content.lower()
        assert "<@&" not in content and "<@456>" not in content and "<@!" not in content
        assert "<#" not in content
        assert message["allowed_mentions"]["parse"] == []
        # The only links are the arXiv ones we made: every unescaped "](" opens our URL, and
        # no other URL is left in the text.
        targets = re.split(r"(?<!\\)\]\(", content)[1:]
        assert len(targets) == len(ADVERSARIAL)
        assert all(rest.startswith("<https://arxiv.org/abs/") for rest in targets)
        assert content.count("://") == len(ADVERSARIAL)
    assert mentioned(messages) == ([1], [])


def test_paper_link_escapes_markdown_and_truncates():
    link = paper_link(paper(1, "[x](http://evil) " + "long " * 40))
    assert link.startswith("[\\[x\\](http:\u200b//evil) long")
    assert link.endswith("…](<https://arxiv.org/abs/2501.00001>)")
    assert paper_link(paper(2, "")) == "[arXiv:2501.00002](<https://arxiv.org/abs/2501.00002>)"


def test_dm_messages_mention_no_one_and_split():
    papers = [paper(i, t) for i, t in enumerate(ADVERSARIAL * 10, 1)]
    messages = dm_messages(papers)
    assert len(messages) > 1
    for message in messages:
        assert len(message["content"]) <= MAX_CONTENT
        assert message["allowed_mentions"] == {
            "parse": [],
            "users": [],
            "roles": [],
            "replied_user": False,
        }
        assert "@everyone" not in message["content"]
        assert not any(compute_pings(message["content"], None)[k] for k in ("users", "roles"))
    assert sum(m["content"].count("• ") for m in messages) == len(papers)
    assert messages[0]["content"].startswith("Papers matching your subscriptions:")
    assert dm_messages([]) == []


def test_matches_of_several_guilds_are_refused():
    other = SubscriberKey(2, "user", 11, None, False)
    with pytest.raises(ValueError, match="one guild"):
        mention_messages({user(11): (paper(1),), other: (paper(1),)})


def test_dm_matches_merge_a_users_dm_keys():
    matches = {
        user(1, dm=True): (paper(1), paper(2)),
        SubscriberKey(2, "user", 1, None, True): (paper(2), paper(3)),
        user(2): (paper(1),),
    }
    assert dm_matches(matches) == {1: (paper(1), paper(2), paper(3))}
