"""The five-task sequence built from the bundled Debian data (the QDC protocol's task sequence)."""

import re
from collections import Counter
from itertools import combinations

import pytest

from hotswap.data import load_dataset
from hotswap.data.dataset import RetrievalDataset
from hotswap.data.tasks import TASK_DOMAINS, TaskData, describe_tasks, load_task_sequence, train_pairs


@pytest.fixture(scope="module")
def debian():
    return load_dataset("debian")


@pytest.fixture(scope="module")
def tasks(debian):
    return load_task_sequence(debian)


@pytest.fixture(scope="module")
def by_name(tasks):
    return {t.name: t for t in tasks}


def test_five_tasks_in_order_with_their_sections(tasks, debian):
    assert [t.name for t in tasks] == list(TASK_DOMAINS)
    for t in tasks:
        assert isinstance(t, TaskData) and t.sections == TASK_DOMAINS[t.name]
        assert {debian.domains[d] for d in t.data.corpus} <= set(t.sections)
        assert set(t.data.domains) == set(t.data.corpus)
        assert t.data.queries and t.data.train_queries  # every task has something to train on and to test


def test_tasks_are_disjoint(tasks):
    for a, b in combinations(tasks, 2):
        assert not set(a.sections) & set(b.sections)
        assert not a.data.corpus.keys() & b.data.corpus.keys()
        qa = a.data.queries.keys() | a.data.train_queries.keys()
        qb = b.data.queries.keys() | b.data.train_queries.keys()
        assert not qa & qb  # queries whose relevant documents straddle two tasks are dropped


def test_qrels_point_inside_the_task_and_splits_do_not_mix(tasks):
    for t in tasks:
        d = t.data
        assert set(d.qrels) == set(d.queries) and set(d.train_qrels) == set(d.train_queries)
        for rel in (*d.qrels.values(), *d.train_qrels.values()):
            assert rel and set(rel) <= d.corpus.keys()
        assert not d.queries.keys() & d.train_queries.keys()


def test_caps_respected(tasks, debian):
    for t in tasks:
        assert len(t.data.corpus) == min(3000, t.available_docs)
        assert len(t.data.train_queries) <= 2000 and len(t.data.queries) <= 500
    small = load_task_sequence(debian, max_docs_per_task=200, max_train_queries=50, max_test_queries=20)
    for t in small:
        assert len(t.data.corpus) == 200 and len(t.data.train_queries) <= 50 and len(t.data.queries) <= 20
    full = {t.name: t for t in load_task_sequence(debian, max_docs_per_task=None, max_train_queries=None,
                                                    max_test_queries=None)}
    libs = full["libraries-devel"]
    assert len(libs.data.corpus) == libs.available_docs > 10_000
    assert len(libs.data.train_queries) > 2000 and len(libs.data.queries) > 500


def _keys(seq):
    return [(sorted(t.data.corpus), sorted(t.data.train_queries), sorted(t.data.queries)) for t in seq]


def test_seeded_subsampling(tasks, debian):
    again = load_task_sequence(debian, seed=0)
    assert _keys(again) == _keys(tasks)
    other = {t.name: t for t in load_task_sequence(debian, seed=1)}
    base = {t.name: t for t in tasks}
    assert set(other["libraries-devel"].data.corpus) != set(base["libraries-devel"].data.corpus)
    assert set(other["games"].data.corpus) == set(base["games"].data.corpus)  # under the cap: all of them
    # one task's sample does not depend on which other tasks are in the sequence
    two = load_task_sequence(debian, tasks={"games": ("games",), "libraries-devel": TASK_DOMAINS["libraries-devel"]})
    assert [t.name for t in two] == ["games", "libraries-devel"]
    assert set(two[1].data.corpus) == set(base["libraries-devel"].data.corpus)


def test_train_pairs_follow_train_qrels(by_name):
    t = by_name["games"]
    pairs = train_pairs(t)
    expected = {(t.data.train_queries[q], t.data.corpus[d]) for q, rel in t.data.train_qrels.items() for d in rel}
    assert len(pairs) == sum(len(rel) for rel in t.data.train_qrels.values()) and set(pairs) == expected


def test_describe_tasks(tasks):
    rows = describe_tasks(tasks)
    assert [r["task"] for r in rows] == list(TASK_DOMAINS)
    for r, t in zip(rows, tasks):
        assert r["docs"] == len(t.data.corpus) and r["test_queries"] == len(t.data.queries)
        assert r["train_queries"] == len(t.data.train_queries) and r["train_pairs"] == len(train_pairs(t))
        assert r["sections"] == list(t.sections) and r["available_docs"] >= r["docs"]


STOP_WORDS = set("""about after all also an and any are as at be been but by can do does for from has have how if in
into is it its may more most much no not of on one only or other over same so some such than that the their them
then there these they this those through to too two under up us very was we well were what when where which while
who will with within without would you your""".split())


def _top_words(task: TaskData, k: int) -> list[str]:
    """The ``k`` content words found in the most documents of the task's corpus."""
    df = Counter()
    for text in task.data.corpus.values():
        df.update({w for w in re.findall(r"[a-z][a-z0-9+]+", text.lower()) if len(w) > 2 and w not in STOP_WORDS})
    return [w for w, _ in df.most_common(k)]


def test_tasks_differ_in_vocabulary(tasks, by_name):
    top = {t.name: _top_words(t, 20) for t in tasks}
    # Debian boilerplate ("package", "contains", "files", ...) is frequent everywhere: leave it out
    shared = set.intersection(*(set(words) for words in top.values()))
    games, libs = (set(top[n]) - shared for n in ("games", "libraries-devel"))
    assert len(games & libs) <= 4, games & libs
    long_games, long_libs = _top_words(by_name["games"], 100), _top_words(by_name["libraries-devel"], 100)
    assert "game" in top["games"][:3] and "game" not in long_libs
    assert "library" in top["libraries-devel"][:3] and "library" not in long_games


def test_bad_task_definitions_are_refused(debian):
    with pytest.raises(ValueError, match=r"unknown Section.*'nosuchsection'"):
        load_task_sequence(debian, tasks={"x": ("games", "nosuchsection")})
    with pytest.raises(ValueError, match="disjoint"):
        load_task_sequence(debian, tasks={"a": ("games", "net"), "b": ("net",)})
    with pytest.raises(ValueError, match="tuple of Section"):
        load_task_sequence(debian, tasks={"a": "games"})


def test_component_prefix_is_normalised():
    ds = RetrievalDataset(
        name="toy", corpus={"d1": "a game to play", "d2": "a shared library", "d3": "another game"},
        queries={"q1": "play a game"}, qrels={"q1": {"d1": 1}},
        train_queries={"q2": "link a library", "q3": "more games"}, train_qrels={"q2": {"d2": 1}, "q3": {"d3": 1}},
        domains={"d1": "contrib/games", "d2": "libs", "d3": "games"},
    )
    games, libs = load_task_sequence(ds, tasks={"games": ("non-free/games",), "libs": ("libs",)})
    assert set(games.data.corpus) == {"d1", "d3"} and games.data.queries == {"q1": "play a game"}
    assert train_pairs(games) == [("more games", "another game")]
    assert train_pairs(libs) == [("link a library", "a shared library")]
    assert games.data.name == "toy/games" and not libs.data.queries


def test_source_sequence_is_five_real_sources_with_disjoint_prefixed_ids():
    from hotswap.data.tasks import SOURCES, load_source_sequence

    tasks = load_source_sequence(max_docs_per_task=300, max_train_queries=100, max_test_queries=50, seed=3)
    assert [t.name for t in tasks] == list(SOURCES) == ["debian", "foldoc", "jargon", "gcide", "pydoc"]
    seen: set[str] = set()
    for t in tasks:
        d = t.data
        assert len(d.corpus) == 300 and 0 < len(d.train_queries) <= 100 and 0 < len(d.queries) <= 50
        assert all(i.startswith(f"{t.name}/") for i in [*d.corpus, *d.queries, *d.train_queries])
        assert all(doc in d.corpus for rel in (*d.qrels.values(), *d.train_qrels.values()) for doc in rel)
        assert not set(d.queries) & set(d.train_queries) and t.available_docs > 300
        assert not seen & set(d.corpus)
        seen |= set(d.corpus)
    again = load_source_sequence(("jargon",), max_docs_per_task=300, max_train_queries=100, max_test_queries=50,
                                 seed=3)
    assert again[0].data.corpus == tasks[2].data.corpus  # a source's sample does not depend on the others
    with pytest.raises(ValueError, match="distinct"):
        load_source_sequence(("jargon", "jargon"))
