import numpy as np
import pytest

from hotswap.data.image_splits import (ImagePools, RehearsalMemory, class_order, extended_classes,
                                       half_memory_batches, incremental_tasks, make_pools, scaled_replacements,
                                       split_test_query_gallery)


def _labels(per_class: int | list[int], n_classes: int = 20, seed: int = 0) -> np.ndarray:
    counts = [per_class] * n_classes if isinstance(per_class, int) else per_class
    y = np.concatenate([np.full(n, c, dtype=np.int64) for c, n in enumerate(counts)])
    return np.random.default_rng(seed).permutation(y)


# --- class order and tasks -----------------------------------------------------------------------------------

def test_class_order_is_a_seeded_permutation():
    order = class_order(20, seed=42)
    assert sorted(order) == list(range(20)) and order != list(range(20))
    assert order == class_order(20, seed=42)
    assert order != class_order(20, seed=7)
    assert all(type(c) is int for c in order)
    assert class_order(20, seed=None) == list(range(20))
    assert set(order[:10]) != set(range(10))  # digits and clothes mixed across tasks


def test_seven_task_split_is_2_then_3_per_task():
    order = class_order(20, seed=42)
    tasks = incremental_tasks(order, 7)
    assert [len(t) for t in tasks] == [2, 3, 3, 3, 3, 3, 3]
    assert [c for t in tasks for c in t] == order  # every class once, in order


@pytest.mark.parametrize("n_tasks, sizes", [
    (1, [20]), (2, [2, 18]), (3, [2, 9, 9]), (4, [2, 6, 6, 6]), (5, [2, 5, 5, 4, 4]),
    (8, [2, 3, 3, 3, 3, 2, 2, 2]), (19, [2] + [1] * 18),
])
def test_general_task_sizes(n_tasks, sizes):
    tasks = incremental_tasks(list(range(20)), n_tasks)
    assert [len(t) for t in tasks] == sizes
    assert sorted(c for t in tasks for c in t) == list(range(20))


def test_explicit_first_task_size():
    assert [len(t) for t in incremental_tasks(list(range(20)), 3, first=4)] == [4, 8, 8]
    with pytest.raises(ValueError, match="single task"):
        incremental_tasks(list(range(20)), 1, first=4)
    with pytest.raises(ValueError, match="between 1 and 20"):
        incremental_tasks(list(range(20)), 3, first=21)


def test_thirty_one_tasks_cannot_be_cut_from_twenty_classes():
    with pytest.raises(ValueError) as e:
        incremental_tasks(class_order(), 31)
    msg = str(e.value)
    assert "at most 19" in msg and "--tasks 19" in msg and "31" in msg
    with pytest.raises(ValueError, match="at most 19"):
        incremental_tasks(class_order(), 20)
    with pytest.raises(ValueError, match=">= 1"):
        incremental_tasks(class_order(), 0)
    with pytest.raises(ValueError, match="repeats"):
        incremental_tasks([0, 1, 1, 2], 2)


def test_scaled_replacements():
    assert scaled_replacements(7, 7, [0, 2, 4]) == [0, 2, 4]
    assert scaled_replacements(19, 31, [0, 10, 20]) == [0, 6, 12]
    assert scaled_replacements(2, 7, [0, 2, 4]) == [0, 1]  # deduplicated, clipped to the last task
    with pytest.raises(ValueError, match="outside"):
        scaled_replacements(7, 7, [7])


def test_extended_classes_are_nested_prefixes():
    order = class_order(20, seed=42)
    steps = extended_classes(order, (0.3, 0.6, 1.0))
    assert [len(s) for s in steps] == [6, 12, 20]
    assert all(s == order[:len(s)] for s in steps)
    assert [len(s) for s in extended_classes(order)] == [6, 20]


@pytest.mark.parametrize("fractions", [(), (0.0, 1.0), (0.5, 1.2), (0.6, 0.3), (0.3, 0.3), (0.01, 1.0),
                                       (0.5, 0.52)])
def test_extended_classes_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError):
        extended_classes(list(range(20)), fractions)


# --- pools ---------------------------------------------------------------------------------------------------

def test_pools_are_disjoint_with_the_right_counts():
    y_train, y_test = _labels(600), _labels(100, seed=1)
    pools = make_pools(y_train, y_test, train_per_class=300, query_per_class=200, seed=42)
    assert isinstance(pools, ImagePools)
    for name in ("train", "query", "pretrain", "gallery"):
        arr = getattr(pools, name)
        assert arr.dtype == np.int64 and np.all(np.diff(arr) > 0)
    assert not set(pools.train) & set(pools.query)
    assert not set(pools.train) & set(pools.pretrain)
    assert not set(pools.query) & set(pools.pretrain)
    assert len(pools.train) + len(pools.query) + len(pools.pretrain) == len(y_train)  # the rest is pretrain
    for name, n in (("train", 300), ("query", 200), ("pretrain", 100)):
        assert np.all(np.bincount(y_train[getattr(pools, name)], minlength=20) == n)
    np.testing.assert_array_equal(pools.gallery, np.arange(len(y_test)))
    d = pools.describe()
    assert d["train"] == {"split": "train", "total": 6000, "min_per_class": 300, "max_per_class": 300}
    assert d["gallery"]["split"] == "test" and d["gallery"]["total"] == 2000
    with pytest.raises(ValueError):
        pools.train[0] = 1  # read-only


def test_pretrain_cap_and_uneven_classes():
    y_train = _labels([520 + 10 * c for c in range(20)])
    pools = make_pools(y_train, _labels(10), pretrain_per_class=25)
    np.testing.assert_array_equal(np.bincount(y_train[pools.pretrain], minlength=20), [20] + [25] * 19)
    pools = make_pools(y_train, _labels(10))
    np.testing.assert_array_equal(np.bincount(y_train[pools.pretrain], minlength=20), [20 + 10 * c for c in range(20)])


def test_pools_are_deterministic_under_a_seed():
    y_train, y_test = _labels(600), _labels(50)
    a, b = make_pools(y_train, y_test, seed=42), make_pools(y_train, y_test, seed=42)
    c = make_pools(y_train, y_test, seed=43)
    for name in ("train", "query", "pretrain"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert not np.array_equal(getattr(a, name), getattr(c, name))


def test_too_few_images_names_the_class_and_counts():
    counts = [600] * 20
    counts[13] = 450
    with pytest.raises(ValueError) as e:
        make_pools(_labels(counts), _labels(10))
    assert "class 13" in str(e.value) and "450" in str(e.value) and "500" in str(e.value)


def test_split_test_query_gallery():
    y_test = _labels(1000, seed=3)
    q, g = split_test_query_gallery(y_test, query_per_class=100, seed=42)
    assert q.dtype == g.dtype == np.int64
    assert not set(q) & set(g) and len(q) + len(g) == len(y_test)
    assert np.all(np.bincount(y_test[q], minlength=20) == 100)
    assert np.all(np.bincount(y_test[g], minlength=20) == 900)
    q2, _ = split_test_query_gallery(y_test, query_per_class=100, seed=42)
    np.testing.assert_array_equal(q, q2)
    assert not np.array_equal(q, split_test_query_gallery(y_test, 100, seed=1)[0])
    counts = [1000] * 20
    counts[4] = 100
    with pytest.raises(ValueError, match="class 4 has 100"):
        split_test_query_gallery(_labels(counts), query_per_class=100)


# --- rehearsal memory ----------------------------------------------------------------------------------------

def test_memory_keeps_per_class_exemplars_of_the_given_classes_only():
    y = _labels(300)
    idx = np.arange(len(y)) + 1000  # indices are not positions
    mem = RehearsalMemory(per_class=20, seed=42)
    mem.update(idx, y, [3, 7])
    assert mem.classes == [3, 7] and len(mem) == 40
    ex = mem.indices
    assert ex.dtype == np.int64 and np.all(np.diff(ex) > 0)
    assert set(y[ex - 1000]) == {3, 7}
    assert np.all(np.bincount(y[ex - 1000], minlength=20)[[3, 7]] == 20)
    mem.update(idx, y, [7, 11])
    assert mem.classes == [3, 7, 11] and len(mem) == 60
    assert set(ex) <= set(mem.indices)  # class 7 re-added: no-op


def test_memory_is_deterministic_and_idempotent():
    y = _labels(300)
    idx = np.arange(len(y))
    a, b = RehearsalMemory(20, seed=42), RehearsalMemory(20, seed=42)
    a.update(idx, y, [0, 1, 2])
    b.update(idx[::-1], y[::-1], [2])  # order of the indices and of the updates does not matter
    b.update(idx, y, [1, 0])
    np.testing.assert_array_equal(a.indices, b.indices)
    before = a.indices.copy()
    a.update(idx, y, [0, 1, 2])
    np.testing.assert_array_equal(a.indices, before)
    c = RehearsalMemory(20, seed=7)
    c.update(idx, y, [0, 1, 2])
    assert not np.array_equal(a.indices, c.indices)


def test_memory_small_class_and_missing_class():
    y = np.array([0] * 5 + [1] * 50)
    mem = RehearsalMemory(20)
    mem.update(np.arange(len(y)), y, [0, 1])
    assert len(mem.exemplars(0)) == 5 and len(mem.exemplars(1)) == 20
    with pytest.raises(ValueError, match="class 9"):
        mem.update(np.arange(len(y)), y, [9])


# --- half-memory batches -------------------------------------------------------------------------------------

def test_half_memory_batches_cover_new_data_once_and_are_half_memory():
    new = np.arange(1000, 1301)  # 301 new indices
    memory = np.arange(0, 40)
    batches = list(half_memory_batches(new, memory, 128, np.random.default_rng(0)))
    assert len(batches) == int(np.ceil(301 / 64))
    seen = np.concatenate([b[b >= 1000] for b in batches])
    assert sorted(seen) == list(new)  # every new index exactly once
    for b in batches[:-1]:
        assert len(b) == 128
        assert np.all(b[:64] >= 1000) and np.all(b[64:] < 40)  # new half first, then memory
    last = batches[-1]
    assert np.sum(last >= 1000) == 301 - 4 * 64 and np.sum(last < 40) == 301 - 4 * 64
    assert all(b.dtype == np.int64 for b in batches)


def test_half_memory_batches_odd_batch_and_small_memory():
    new, memory = np.arange(100, 150), np.array([1, 2])  # memory smaller than half a batch: with replacement
    batches = list(half_memory_batches(new, memory, 9, np.random.default_rng(1)))
    assert len(batches) == int(np.ceil(50 / 5))
    assert all(np.sum(b >= 100) == 5 and np.sum(b < 100) == 4 for b in batches)
    assert sorted(np.concatenate([b[b >= 100] for b in batches])) == list(new)


def test_plain_batches_when_memory_is_empty():
    new = np.arange(300)
    batches = list(half_memory_batches(new, np.zeros(0, dtype=np.int64), 128, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [128, 128, 44]
    allidx = np.concatenate(batches)
    assert sorted(allidx) == list(new) and not np.array_equal(allidx, new)  # shuffled


def test_half_memory_batches_are_seeded_and_checked_eagerly():
    new, memory = np.arange(100, 200), np.arange(20)
    a = list(half_memory_batches(new, memory, 16, np.random.default_rng(5)))
    b = list(half_memory_batches(new, memory, 16, np.random.default_rng(5)))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError):
        half_memory_batches(new, memory, 1, np.random.default_rng(0))
    with pytest.raises(ValueError):
        half_memory_batches(new, memory, 0, np.random.default_rng(0))
