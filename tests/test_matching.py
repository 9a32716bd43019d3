from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import InputError
from bot.models import Paper, Subscription
from bot.search.query import parse_query
from bot.subscriptions.matching import (
    DayIndex,
    MatchStats,
    SubscriberKey,
    SubscriptionIndex,
    Tokenizer,
    canonical_query,
    match_feed,
    merge_matches,
    reference_match,
)
from bot.subscriptions.rules import prepare_subscription

GUILD, OTHER_GUILD = 1, 2
FEED, OTHER_FEED = 7, 8


def paper(n: int, title: str = "", abstract: str = "", **fields) -> Paper:
    return Paper(f"2501.{n:05d}", title or f"Paper {n}", abstract=abstract, **fields)


def sub(kind: str, value: str, subscriber_id: int = 100, **fields) -> Subscription:
    return prepare_subscription(fields.pop("guild_id", GUILD), subscriber_id, kind, value, **fields)


def user(subscriber_id: int, guild_id: int = GUILD, feed_id=None, dm=False) -> SubscriberKey:
    return SubscriberKey(guild_id, "user", subscriber_id, feed_id, dm)


def ids(papers) -> list[str]:
    return [p.arxiv_id[-2:].lstrip("0") for p in papers]


def matched(subs, papers) -> dict[int, list[str]]:
    """Match with the index, check against the plain loop, return {subscriber: paper numbers}."""
    result = SubscriptionIndex.build(subs).match(papers)
    assert result == reference_match(subs, papers)
    return {key.subscriber_id: ids(found) for key, found in result.items()}


DAY = [
    paper(
        1,
        "Diffusion Models for Video Generation",
        "We run diffusion.",
        authors=("Yann LeCun",),
        tags=("Text-to-Video",),
    ),
    paper(
        2,
        "Language Agents That Plan",
        "Robots running in kitchens.",
        authors=("Ada Lovelace", "Alan Turing"),
        tags=("Robotics",),
    ),
    paper(
        3,
        "Models of Video",
        "Cafés and über-robots; a survey of Yann LeCun's work.",
        authors=("Grace Hopper",),
        tags=("Computer Vision",),
    ),
]


def test_a_tag_matches_the_tag_and_its_taxonomy_group():
    subs = [
        sub("tag", "Computer Vision", 1),
        sub("tag", "text-to-video", 2),
        sub("tag", "Audio", 3),
    ]
    assert matched(subs, DAY) == {1: ["1", "3"], 2: ["1"]}


def test_an_untagged_paper_is_matched_on_its_classified_tags():
    untagged = paper(9, "Automatic Speech Recognition with Whisper", "speech recognition audio")
    assert matched([sub("tag", "Audio", 1)], [untagged]) == {1: ["9"]}


def test_keywords_match_like_search_phrases_or_exclusions_stemming_prefixes():
    subs = [
        sub("keyword", '"video models"', 1),  # phrase: word order matters
        sub("keyword", "video models", 2),  # all words, any order
        sub("keyword", "planning OR kitchen", 3),  # stemmed: plan, kitchens
        sub("keyword", "diffusion -generation", 4),
        sub("keyword", "video -diffusion", 5),
        sub("keyword", "robo*", 6),  # prefix
        sub("keyword", "cafe uber", 7),  # diacritics removed
        sub("keyword", "run", 8),  # "running" and "run" share the stem
        sub("keyword", "lecun", 9),  # any column: abstract of 3, authors of 1
    ]
    assert matched(subs, DAY) == {
        2: ["1", "3"],
        3: ["2"],
        5: ["3"],
        6: ["2", "3"],
        7: ["3"],
        8: ["1", "2"],
        9: ["1", "3"],
    }


def test_an_author_subscription_matches_the_authors_column_only():
    subs = [
        sub("author", "Yann LeCun", 1),
        sub("author", "Turing", 2),
        sub("author", "LeCun Yann", 3),
    ]
    assert matched(subs, DAY) == {1: ["1"], 2: ["2"]}


def test_author_phrases_follow_fts_phrase_rules_on_the_authors_column():
    papers = [
        paper(1, "T", authors=("Jean-Pierre Dupont", "Li Wei")),
        paper(2, "T", authors=("Wei Li", "Anna Maria Van Der Berg Smith Jones")),
        paper(3, "T", authors=("José Núñez",)),
    ]
    subs = [
        sub("author", "Jean Pierre Dupont", 1),  # hyphen and space are both separators
        sub("author", "dupont li", 2),  # a phrase may run across ", " as in FTS5
        sub("author", "Anna Maria Van Der Berg Smith Jones", 3),  # longer than the n-grams
        sub("author", "Jose Nunez", 4),
        sub("author", "wei", 5),
        sub("keyword", "author:wei*", 6),  # a prefix goes through MATCH
    ]
    assert matched(subs, papers) == {
        1: ["1"],
        2: ["1"],
        3: ["2"],
        4: ["3"],
        5: ["1", "2"],
        6: ["1", "2"],
    }


def test_a_dotted_capital_i_in_an_author_name_still_matches():
    papers = [paper(1, "T", authors=("İlker Öztürk",)), paper(2, "T", authors=("Ilker Ozturk",))]
    subscription = sub("author", "İlker Öztürk", 1)
    assert subscription.norm == "ilker öztürk"
    assert matched([subscription], papers) == {1: ["1", "2"]}


def test_tag_filters_inside_a_keyword_query_use_the_stored_tags_like_search():
    subs = [
        sub("keyword", "video tag:Computer-Vision", 1),
        sub("keyword", "video -tag:robotics", 2),
    ]
    assert matched(subs, DAY) == {1: ["3"], 2: ["1", "3"]}


def test_each_subscriber_gets_papers_once_in_day_order():
    subs = [sub("keyword", "models", 1), sub("tag", "Robotics", 1), sub("keyword", "video", 1)]
    assert matched(subs, [*DAY, DAY[0]]) == {1: ["1", "2", "3"]}


def test_a_query_whose_anchor_is_absent_is_never_evaluated():
    subs = [
        sub("keyword", "zebra diffusion", 1),  # a candidate (anchor "diffusion"), but no zebra
        sub("keyword", "kangaroo* OR wombat", 2),
        sub("keyword", "diffusion OR zebra", 3),
        sub("keyword", "diffusion planning", 4),  # candidate, both words present
        sub("author", "Nobody Atall", 5),
    ]
    index = SubscriptionIndex.build(subs)
    stats = MatchStats()
    result = index.match(DAY, stats=stats)
    assert stats.evaluated_queries == ['("diffusion" OR "zebra")', '"diffusion" AND "planning"']
    assert stats.candidates == 3
    assert stats.match_calls == 2  # "diffusion" and "planning" once each; "zebra" is absent
    assert {key.subscriber_id for key in result} == {3}


def test_a_candidate_missing_another_required_word_runs_no_match():
    # "diffusion" is the anchor (longest word) and present; "cat" is absent: no MATCH at all.
    index = SubscriptionIndex.build([sub("keyword", "diffusion cat", 1)])
    stats = MatchStats()
    assert index.match(DAY, stats=stats) == {}
    assert stats.candidates == 1
    assert stats.evaluated_queries == [] and stats.match_calls == 0


def test_identical_queries_of_many_subscribers_are_evaluated_once():
    subs = [sub("keyword", "Diffusion", i, guild_id=i % 3) for i in range(50)]
    stats = MatchStats()
    result = SubscriptionIndex.build(subs).match(DAY, stats=stats)
    assert len(result) == 50
    assert stats.evaluated_queries == ['"diffusion"'] and stats.match_calls == 1


def test_guild_and_feed_scoping():
    subs = [
        sub("tag", "Robotics", 1),
        sub("tag", "Robotics", 2, feed_id=OTHER_FEED),
        sub("tag", "Robotics", 3, guild_id=OTHER_GUILD),
        sub("tag", "Robotics", 4, subscriber_type="role", feed_id=FEED),
        sub("tag", "Robotics", 5, subscriber_type="role", feed_id=OTHER_FEED),
        sub("keyword", "agents", 6, dm=True),
    ]
    index = SubscriptionIndex.build(subs)
    result = match_feed(index, FEED, GUILD, DAY)
    assert set(result) == {
        user(1),
        SubscriberKey(GUILD, "role", 4, FEED, False),
        user(6, dm=True),
    }
    assert len(index.match(DAY)) == 6
    assert set(index.match(DAY, guild_id=OTHER_GUILD)) == {user(3, guild_id=OTHER_GUILD)}


def test_a_day_index_is_reused_across_guilds_and_closed():
    index = SubscriptionIndex.build(
        [sub("keyword", "video", 1), sub("keyword", "video", 2, guild_id=2)]
    )
    with DayIndex(DAY) as day:
        stats = MatchStats()
        first = index.match(day, guild_id=GUILD, stats=stats)
        second = index.match(day, guild_id=2, stats=stats)
    assert list(first.values()) == list(second.values()) == [(DAY[0], DAY[2])]
    assert stats.match_calls == 1  # the phrase result was cached on the day


def test_the_result_is_a_read_only_mapping_with_cheap_views():
    subs = [sub("tag", "Robotics", 1), sub("keyword", "video", 2, guild_id=OTHER_GUILD)]
    result = SubscriptionIndex.build(subs).match(DAY)
    assert len(result) == 2 and user(1) in result and user(9) not in result
    assert result[user(1)] == (DAY[1],)
    with pytest.raises(KeyError):
        result[user(9)]
    assert dict(result.items()) == {user(1): (DAY[1],), user(2, OTHER_GUILD): (DAY[0], DAY[2])}
    assert sorted(map(len, result.values())) == [1, 2]
    assert result.for_guild(OTHER_GUILD) == {user(2, OTHER_GUILD): (DAY[0], DAY[2])}
    assert result.for_guild(99) == {}
    assert result == dict(result) and "2 subscribers" in repr(result)


def test_subscribers_come_in_the_order_of_their_first_subscription():
    subs = [
        sub("keyword", "video", 5),
        sub("tag", "Robotics", 3),
        sub("keyword", "diffusion", 9),
        sub("tag", "Computer Vision", 5),
    ]
    result = SubscriptionIndex.build(subs).match(DAY)
    assert [key.subscriber_id for key in result] == [5, 3, 9]
    assert [key.subscriber_id for key, _ in result.items()] == [5, 3, 9]


def test_a_day_with_more_papers_than_an_sqlite_integer_has_bits():
    papers = [
        paper(n, f"Paper {n}", "common words" if n % 7 == 0 else "other", authors=(f"Ann {n}",))
        for n in range(1, 71)
    ]
    subs = [
        sub("keyword", "common", 1),
        sub("keyword", "commo* -paper", 2),
        sub("author", "Ann 70", 3),
        sub("keyword", '"paper 64" OR "paper 70"', 4),
    ]
    sevens = [str(n) for n in range(7, 71, 7)]
    assert matched(subs, papers) == {1: sevens, 3: ["70"], 4: ["64", "70"]}


def test_empty_inputs():
    assert SubscriptionIndex.build([]).match(DAY) == {}
    assert SubscriptionIndex.build([sub("tag", "Robotics", 1)]).match([]) == {}


def test_subscriptions_without_stored_terms_are_tokenized_at_build():
    bare = replace(sub("keyword", '"language agents" OR robots', 1), terms=())
    index = SubscriptionIndex.build([bare])
    assert [key.subscriber_id for key in index.match(DAY)] == [1]


def test_a_subscription_that_can_never_match_is_skipped():
    never = Subscription(GUILD, 1, "keyword", "_", "_")
    index = SubscriptionIndex.build([never, sub("keyword", "video", 2)])
    assert index.skipped == 1 and index.size == 1


def test_merge_matches_keeps_first_seen_order():
    key = user(1)
    merged = merge_matches({key: (DAY[2], DAY[0])}, {key: (DAY[0], DAY[1])})
    assert merged == {key: (DAY[2], DAY[0], DAY[1])}


def test_tokenizer_stems_like_the_store():
    with Tokenizer() as tokenizer:
        assert tokenizer.tokens("Running Cafés über_alles 3D-printing") == (
            "run",
            "cafe",
            "uber",
            "all",
            "3d",
            "print",
        )


# ------------------------------------------------------------------------------------------
# Property tests: the index agrees with the plain loop, canonical queries round-trip

WORDS = [
    "diffusion",
    "model",
    "models",
    "modeling",
    "video",
    "language",
    "agent",
    "agents",
    "run",
    "running",
    "runner",
    "graph",
    "neural",
    "network",
    "robot",
    "robots",
    "café",
    "cafe",
    "über",
    "3d",
    "vision",
    "plan",
    "planning",
    "a",
    "the",
    "foo_bar",
    "x-ray",
]
NAMES = [
    "Yann LeCun",
    "Ada Lovelace",
    "Alan Turing",
    "Grace Hopper",
    "José Núñez",
    "Li Wei",
    "Wei Li",
    "Jean-Pierre Dupont",
    "Anna Maria van der Berg Smith Jones",
]
TAGS = ["Robotics", "Computer Vision", "Text-to-Video", "Audio", "Natural Language Processing"]

text = st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join)
papers_strategy = st.lists(
    st.builds(
        lambda n, title, abstract, authors, tags: paper(
            n, title or "x", abstract, authors=tuple(authors), tags=tuple(tags)
        ),
        st.integers(1, 99),
        text,
        text,
        st.lists(st.sampled_from(NAMES), max_size=3, unique=True),
        st.lists(st.sampled_from(TAGS), max_size=2, unique=True),
    ),
    max_size=8,
)


def _piece(draw_word: str, kind: int, other: str) -> str:
    return [
        draw_word,
        draw_word[:3] + "*",
        f'"{draw_word} {other}"',
        f"-{draw_word}",
        f"{draw_word} OR {other}",
        f'author:"{other}"',
        f"-{other}*",
        f'tag:"{TAGS[len(other) % len(TAGS)]}"',
    ][kind]


query_strategy = st.lists(
    st.builds(_piece, st.sampled_from(WORDS), st.integers(0, 7), st.sampled_from(WORDS + NAMES)),
    min_size=1,
    max_size=4,
).map(" ".join)

subscription_spec = st.tuples(
    st.sampled_from(["tag", "keyword", "keyword", "author"]),
    st.one_of(query_strategy, st.sampled_from(TAGS + NAMES)),
    st.integers(1, 6),  # subscriber
    st.sampled_from([GUILD, OTHER_GUILD]),
    st.booleans(),  # keep the stored terms, or make the index tokenize
)


def _subscriptions(specs) -> list[Subscription]:
    found = []
    for kind, value, subscriber, guild, keep_terms in specs:
        if kind == "tag" and value not in TAGS:
            value = TAGS[len(value) % len(TAGS)]
        try:
            made = prepare_subscription(guild, subscriber, kind, value)
        except InputError:
            continue
        found.append(made if keep_terms else replace(made, terms=()))
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(papers_strategy, st.lists(subscription_spec, max_size=12))
def test_the_index_agrees_with_the_plain_loop(papers, specs):
    subs = _subscriptions(specs)
    index = SubscriptionIndex.build(subs)
    expected = reference_match(subs, papers)
    assert index.match(papers) == expected
    for guild in (GUILD, OTHER_GUILD):
        scoped = {k: v for k, v in expected.items() if k.guild_id == guild}
        assert index.match(papers, guild_id=guild) == scoped


@settings(max_examples=300, deadline=None)
@given(st.one_of(query_strategy, st.text(max_size=40)))
def test_canonical_queries_round_trip(text_value):
    query = parse_query(text_value)
    canonical = canonical_query(query)
    if "İ" not in text_value:  # its lowercase has a combining dot, which is dropped
        assert parse_query(canonical) == query
    assert canonical_query(parse_query(canonical)) == canonical


def test_a_dotted_capital_i_gives_the_same_tokens_after_canonicalisation():
    canonical = canonical_query(parse_query("İstanbul"))
    assert canonical == "istanbul"
    with Tokenizer() as tokenizer:
        assert tokenizer.tokens("İstanbul".lower()) == tokenizer.tokens(canonical)


@pytest.mark.parametrize(
    ("one", "other"),
    [("Diffusion  Models", '"diffusion" models'), ("a OR b", "A  OR  B"), ("-x y", "y -x")],
)
def test_spellings_of_one_query_share_a_canonical_form(one, other):
    assert canonical_query(parse_query(one)) == canonical_query(parse_query(other))
