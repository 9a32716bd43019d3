import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.search.query import parse_query


def test_plain_words_are_all_required():
    assert parse_query("tensor attention").to_fts() == '"tensor" AND "attention"'


def test_quoted_phrase_stays_one_term():
    assert parse_query('"process reward" models').to_fts() == '"process reward" AND "models"'


def test_or_joins_the_neighbouring_terms_only():
    assert (
        parse_query("video OR audio generation").to_fts() == '("video" OR "audio") AND "generation"'
    )


def test_exclusions_become_not():
    assert parse_query('llm -survey -"position paper"').to_fts() == (
        '("llm") NOT ("survey" OR "position paper")'
    )


def test_tag_and_author_fields():
    query = parse_query('tag:"Computer Vision" author:yuan -tag:robotics attention')
    assert query.tags == ("Computer Vision",)
    assert query.excluded_tags == ("robotics",)
    assert query.to_fts() == '"attention" AND authors_text : "yuan"'


def test_prefix_star_is_kept_for_single_words():
    assert parse_query("transform*").to_fts() == '"transform"*'


def test_fts_operators_and_junk_are_plain_words():
    # A bare token joined by punctuation (self-attention, title:x) is matched as a phrase.
    assert parse_query('NEAR(a b) title:x ^start "unterminated').to_fts() == (
        '"near a" AND "b" AND "title x" AND "start" AND "unterminated"'
    )


def test_hyphenated_words_match_as_a_phrase():
    assert parse_query("self-attention").to_fts() == '"self attention"'


def test_input_without_words_has_no_text_query():
    query = parse_query(' "" -- ** () OR ')
    assert query.to_fts() is None
    assert query.is_empty


def test_only_exclusions_has_no_positive_part():
    query = parse_query("-survey")
    assert query.to_fts() is None and query.excluded_fts() == '"survey"'


def _fts_connection() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE t USING fts5(title, authors_text, tokenize='porter unicode61')"
    )
    conn.execute("INSERT INTO t VALUES ('tensor product attention', 'Huizhuo Yuan')")
    return conn


CONN = _fts_connection()


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_no_input_ever_produces_an_fts5_syntax_error(text):
    query = parse_query(text)
    for expression in (query.to_fts(), query.excluded_fts()):
        if expression is not None:
            CONN.execute("SELECT rowid FROM t WHERE t MATCH ?", (expression,)).fetchall()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                '"',
                "-",
                "OR",
                "tag:",
                "author:",
                "*",
                "(",
                ")",
                ":",
                "^",
                "NEAR",
                "AND",
                "NOT",
                "x",
                " ",
                "é",
                "_",
            ]
        ),
        max_size=20,
    )
)
def test_operator_soup_never_raises(parts):
    query = parse_query("".join(parts))
    expression = query.to_fts()
    if expression is not None:
        CONN.execute("SELECT rowid FROM t WHERE t MATCH ?", (expression,)).fetchall()
