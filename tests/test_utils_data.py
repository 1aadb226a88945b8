"""minigan.utils.data: torch.utils.data's data sets, samplers, collation and DataLoader.

These tests run without torch; the ones at the end compare with torch where it is installed.
"""
import collections
import warnings

import numpy as np
import pytest

import minigan
import minigan.utils.data as mud
from minigan import backend
from minigan.random import Generator
from minigan.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset,
                                IterableDataset, RandomSampler, Sampler, SequentialSampler,
                                Subset, SubsetRandomSampler, TensorDataset,
                                WeightedRandomSampler, default_collate, default_convert,
                                random_split)


def _dataset(n=10, device="cpu"):
    x = minigan.tensor(np.arange(3 * n, dtype=np.float32).reshape(n, 3), device=device)
    y = minigan.tensor(np.arange(n), device=device)
    return TensorDataset(x, y)


def _labels(loader):
    return [b[1].tolist() for b in loader]


def _flat(batches):
    return [i for b in batches for i in b]


class Squares(Dataset):
    """A plain map-style data set: (float array, int, str) samples."""

    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.full(2, i, dtype=np.float32), i * i, f"s{i}"

    def __len__(self):
        return self.n


class Count(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


# ----------------------------------------------------------------------------- data sets

def test_tensor_dataset_items_and_length():
    ds = _dataset(5)
    assert len(ds) == 5
    x, y = ds[2]
    assert x.tolist() == [6.0, 7.0, 8.0] and y.item() == 2
    assert [t.shape for t in ds[1:3]] == [(2, 3), (2,)]


def test_tensor_dataset_refuses_bad_tensors():
    with pytest.raises(ValueError, match=r"\[4, 3\]"):
        TensorDataset(minigan.zeros(4, 2), minigan.zeros(3))
    with pytest.raises(TypeError, match="argument 1 is a numpy.ndarray"):
        TensorDataset(minigan.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(minigan.tensor(1.0))


def test_subset_and_concat():
    ds = _dataset(6)
    sub = Subset(ds, [5, 0, -1])
    assert len(sub) == 3 and [sub[i][1].item() for i in range(3)] == [5, 0, 5]
    assert [s[1].item() for s in sub.__getitems__([2, 0])] == [5, 5]
    cat = ds + Subset(ds, [1, 2])
    assert isinstance(cat, ConcatDataset) and len(cat) == 8
    assert cat.cumulative_sizes == [6, 8]
    assert [cat[i][1].item() for i in (0, 5, 6, 7, -1, -8)] == [0, 5, 1, 2, 2, 0]
    with pytest.raises(ValueError, match="-9"):
        cat[-9]
    with pytest.raises(IndexError, match="8"):
        cat[8]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])
    with pytest.raises(TypeError, match="IterableDataset"):
        ConcatDataset([ds, Count(3)])


def test_iterable_datasets_chain():
    chained = Count(2) + Count(3)
    assert list(chained) == [0, 1, 0, 1, 2] and len(chained) == 5


def test_base_classes_say_what_to_implement():
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]
    with pytest.raises(NotImplementedError, match="__iter__"):
        iter(IterableDataset())
    with pytest.raises(NotImplementedError, match="__iter__"):
        iter(Sampler())


@pytest.mark.parametrize("n,lengths,expected", [
    (10, [3, 7], [3, 7]),
    (10, [0.3, 0.7], [3, 7]),
    (11, [0.3, 0.3, 0.4], [4, 3, 4]),        # floors 3, 3, 4; the remainder goes to split 0
    (10, [0.25] * 4, [3, 3, 2, 2]),          # floors 2 each; two left over, round robin
    (7, [0.5, 0.5], [4, 3]),
])
def test_random_split_lengths_follow_torch(n, lengths, expected):
    parts = random_split(range(n), lengths, generator=Generator(1))
    assert [len(p) for p in parts] == expected
    seen = sorted(i for p in parts for i in (p[k] for k in range(len(p))))
    assert seen == list(range(n))  # disjoint and complete


def test_random_split_is_seeded_and_checks_lengths():
    a = [p.indices for p in random_split(range(20), [0.5, 0.5], generator=Generator(3))]
    b = [p.indices for p in random_split(range(20), [0.5, 0.5], generator=Generator(3))]
    assert a == b
    minigan.manual_seed(7)
    c = [p.indices for p in random_split(range(20), [10, 10])]
    minigan.manual_seed(7)
    assert [p.indices for p in random_split(range(20), [10, 10])] == c
    assert sorted(c[0] + c[1]) == list(range(20)) and c[0] != list(range(10))
    with pytest.raises(ValueError, match="does not equal the length"):
        random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match=r"index 1 \(-0.5\)"):
        random_split(range(10), [0.5, -0.5, 1.0])
    with pytest.warns(UserWarning, match="index 1 is 0"):
        random_split(range(2), [1.0, 0.0])
    with pytest.raises(TypeError, match="minigan Generator"):
        random_split(range(4), [2, 2], generator=np.random.default_rng(0))


# ----------------------------------------------------------------------------- samplers

def test_samplers_yield_the_right_indices():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    perm = list(RandomSampler(range(6), generator=Generator(0)))
    assert sorted(perm) == list(range(6))
    more = list(RandomSampler(range(4), num_samples=10, generator=Generator(0)))
    assert len(more) == 10 and sorted(more[:8]) == [0, 0, 1, 1, 2, 2, 3, 3]
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=Generator(0)))
    assert len(drawn) == 50 and set(drawn) <= {0, 1, 2}
    assert len(RandomSampler(range(3), num_samples=7)) == 7
    sub = list(SubsetRandomSampler([10, 20, 30], generator=Generator(0)))
    assert sorted(sub) == [10, 20, 30]
    assert list(BatchSampler(range(7), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, True)) == [[0, 1, 2], [3, 4, 5]]
    assert len(BatchSampler(range(7), 3, False)) == 3 and len(BatchSampler(range(7), 3, True)) == 2


def test_weighted_sampler():
    w = [0.0, 1.0, 3.0, 0.0]
    draws = list(WeightedRandomSampler(w, 4000, generator=Generator(0)))
    counts = np.bincount(draws, minlength=4)
    assert counts[0] == counts[3] == 0 and 2.6 < counts[2] / counts[1] < 3.4
    once = list(WeightedRandomSampler(w, 2, replacement=False, generator=Generator(0)))
    assert sorted(once) == [1, 2]
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler(w, 3, replacement=False)


@pytest.mark.parametrize("make,error,fragment", [
    (lambda: BatchSampler(range(3), 0, False), ValueError, "batch_size=0"),
    (lambda: BatchSampler(range(3), True, False), ValueError, "batch_size=True"),
    (lambda: BatchSampler(range(3), 2, 1), ValueError, "drop_last=1"),
    (lambda: RandomSampler(range(3), num_samples=0), ValueError, "num_samples=0"),
    (lambda: RandomSampler(range(0)), ValueError, "num_samples=0"),
    (lambda: RandomSampler(range(3), replacement=1), TypeError, "replacement=1"),
    (lambda: RandomSampler(range(3), generator=object()), TypeError, "minigan Generator"),
])
def test_sampler_argument_errors(make, error, fragment):
    with pytest.raises(error, match=fragment):
        make()


# ----------------------------------------------------------------------------- collation

def test_collate_numbers_with_torch_dtypes():
    assert default_collate([1, 2]).dtype == np.int64
    assert default_collate([1.0, 2.5]).dtype == np.float64  # torch: Python floats -> float64
    assert default_collate([True, False]).dtype == np.bool_
    assert default_collate([1, 2.5]).dtype == np.float32    # torch.tensor of a mixed list
    assert default_collate([np.float32(1), np.float32(2)]).dtype == np.float32
    assert default_collate([np.int32(1), np.int32(2)]).dtype == np.int32
    out = default_collate([3, 4])
    assert isinstance(out, minigan.Tensor) and out.tolist() == [3, 4]


def test_collate_arrays_and_tensors_keep_their_dtype():
    out = default_collate([np.zeros((2, 3)), np.ones((2, 3))])
    assert isinstance(out, minigan.Tensor) and out.shape == (2, 2, 3) and out.dtype == np.float64
    assert default_collate([np.zeros(2, np.uint8)] * 3).dtype == np.uint8
    t = default_collate([minigan.tensor([1.0, 2.0]), minigan.tensor([3.0, 4.0])])
    assert t.dtype == np.float32 and t.tolist() == [[1, 2], [3, 4]]
    mixed = default_collate([minigan.tensor([1]), minigan.tensor([2.5])])
    assert mixed.dtype == np.float32 and mixed.tolist() == [[1.0], [2.5]]  # torch promotion


def test_collate_containers_transpose_as_torch():
    Point = collections.namedtuple("Point", "x y")
    batch = [({"a": 1, "b": [1.0, np.float32(2)]}, Point(1, 2), "s"),
             ({"a": 2, "b": [3.0, np.float32(4)]}, Point(3, 4), "t")]
    d, p, s = out = default_collate(batch)
    assert isinstance(out, list)  # a tuple sample collates to a list, as in torch
    assert d["a"].tolist() == [1, 2] and d["a"].dtype == np.int64
    assert d["b"][0].dtype == np.float64 and d["b"][1].dtype == np.float32
    assert isinstance(p, Point) and p.x.tolist() == [1, 3] and p.y.tolist() == [2, 4]
    assert s == ["s", "t"]
    assert [v.tolist() for v in default_collate([[0, 1], [2, 3]])] == [[0, 2], [1, 3]]


def test_collate_errors():
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="NoneType"):
        default_collate([None, None])
    with pytest.raises(TypeError, match="<U1"):
        default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(RuntimeError, match=r"\(2,\) at entry 0 and \(3,\) at entry 1"):
        default_collate([minigan.zeros(2), minigan.zeros(3)])
    with pytest.raises(ValueError, match="empty"):
        default_collate([])


def test_default_convert():
    assert isinstance(default_convert(np.zeros(2)), minigan.Tensor)
    assert default_convert(np.float32(2)).dtype == np.float32
    conv = default_convert((1, np.arange(2), {"k": np.ones(1)}))
    assert isinstance(conv, list) and conv[0] == 1 and conv[1].tolist() == [0, 1]
    assert isinstance(conv[2]["k"], minigan.Tensor)
    strings = np.array(["a"])
    assert default_convert(strings) is strings and default_convert("abc") == "abc"


# ----------------------------------------------------------------------------- the loader

@pytest.mark.parametrize("n,bs,drop_last,sizes", [
    (10, 4, False, [4, 4, 2]),
    (10, 4, True, [4, 4]),
    (8, 4, True, [4, 4]),
    (3, 5, False, [3]),
    (3, 5, True, []),
    (0, 2, False, []),
])
def test_batch_counts_and_sizes(n, bs, drop_last, sizes):
    for dataset in (_dataset(n), Squares(n)):  # the gathered path and the per-sample path
        loader = DataLoader(dataset, batch_size=bs, drop_last=drop_last)
        assert len(loader) == len(sizes) and len(iter(loader)) == len(sizes)
        batches = list(loader)
        assert [len(b[1]) for b in batches] == sizes
        square = isinstance(dataset, Squares)
        expected = [i * i if square else i for i in range(sum(sizes))]
        assert _flat(b[1].tolist() for b in batches) == expected


def test_default_batch_size_is_one():
    batches = list(DataLoader(_dataset(3)))
    assert len(batches) == 3 and batches[0][0].shape == (1, 3)


def test_per_sample_batches_collate_each_field():
    x, sq, names = next(iter(DataLoader(Squares(5), batch_size=3)))
    assert x.shape == (3, 2) and x.dtype == np.float32
    assert sq.dtype == np.int64 and sq.tolist() == [0, 1, 4]
    assert names == ["s0", "s1", "s2"]


def test_every_index_once_per_epoch():
    loader = DataLoader(_dataset(23), batch_size=5, shuffle=True)
    orders = []
    for _ in range(3):
        order = _flat(_labels(loader))
        assert sorted(order) == list(range(23))
        orders.append(order)
    assert orders[0] != orders[1] and orders[0] != list(range(23))
    dropped = _flat(_labels(DataLoader(_dataset(23), batch_size=5, shuffle=True,
                                       drop_last=True)))
    assert len(dropped) == 20 and len(set(dropped)) == 20


def test_shuffle_is_reproducible_under_manual_seed():
    def epochs():
        loader = DataLoader(_dataset(12), batch_size=4, shuffle=True)
        return [_labels(loader) for _ in range(2)]

    minigan.manual_seed(123)
    first = epochs()
    minigan.manual_seed(123)
    assert epochs() == first
    minigan.manual_seed(124)
    assert epochs() != first
    assert first[0] != first[1]  # a new order each epoch


def test_generator_argument_gives_its_own_stream():
    def order(gen):
        return _labels(DataLoader(_dataset(12), batch_size=5, shuffle=True, generator=gen))

    minigan.manual_seed(0)
    before = minigan.random.default_generator("cpu").state_dict()
    a = order(Generator(42))
    assert minigan.random.default_generator("cpu").state_dict() == before  # untouched
    assert order(Generator(42)) == a and order(Generator(43)) != a
    with pytest.raises(TypeError, match="minigan Generator"):
        DataLoader(_dataset(3), shuffle=True, generator=np.random.default_rng(0))


def _general(batch):
    return default_collate(batch)  # not the default function itself: the per-sample path


@pytest.mark.parametrize("subset", [None, [7, 3, -1, 0, 5, 2, 9]])
@pytest.mark.parametrize("shuffle,drop_last", [(False, False), (True, False), (True, True)])
def test_tensor_dataset_fast_path_equals_per_sample_path(subset, shuffle, drop_last):
    ds = _dataset(10)
    if subset is not None:
        ds = Subset(Subset(ds, list(range(10))[::-1]), subset)  # nested: indices compose
    kw = dict(batch_size=3, shuffle=shuffle, drop_last=drop_last)
    fast = list(DataLoader(ds, generator=Generator(5), **kw))
    slow = list(DataLoader(ds, generator=Generator(5), collate_fn=_general, **kw))
    assert len(fast) == len(slow) > 0
    for f, s in zip(fast, slow):
        assert isinstance(f, list) and isinstance(s, list) and len(f) == len(s) == 2
        for a, b in zip(f, s):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_fast_path_fetches_no_sample(monkeypatch):
    def refuse(self, index):
        raise AssertionError("the gathered path must not fetch sample by sample")

    monkeypatch.setattr(TensorDataset, "__getitem__", refuse)
    ds = _dataset(10)
    for loader in (DataLoader(ds, batch_size=4, shuffle=True),
                   DataLoader(Subset(ds, [1, 2, 3]), batch_size=2),
                   DataLoader(ds, batch_sampler=[[3, 1], [0, -1]])):  # a list of index lists
        assert len(list(loader)) > 0
    with pytest.raises(AssertionError, match="sample by sample"):
        list(DataLoader(ds, batch_size=4, collate_fn=_general))  # the check would see it


def test_custom_batch_sampler_gathers_and_a_subclass_goes_per_sample():
    ds = _dataset(6)
    assert _labels(DataLoader(ds, batch_sampler=[[3, 1], [0, -1]])) == [[3, 1], [0, 5]]
    with pytest.raises(IndexError, match="index 6 is out of range for 6 samples"):
        list(DataLoader(ds, batch_sampler=[[6]]))

    class Shifted(TensorDataset):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x, y + 100

    assert _labels(DataLoader(Shifted(*ds.tensors), batch_size=4)) == [[100, 101, 102, 103],
                                                                       [104, 105]]


def test_fast_path_keeps_the_graph():
    w = minigan.tensor(np.arange(8, dtype=np.float32).reshape(4, 2), requires_grad=True)
    grads = []
    for collate in (None, _general):
        ds = TensorDataset(w, minigan.tensor(np.arange(4)))
        x, _ = next(iter(DataLoader(Subset(ds, [3, 1, 3]), batch_size=3, collate_fn=collate)))
        grads.append(minigan.grad((x * x).sum(), [w])[0].numpy())
    np.testing.assert_array_equal(grads[0], grads[1])
    assert grads[0][3].tolist() == [24.0, 28.0]  # row 3 taken twice: 2 * 2 * x


def test_user_getitems_is_used_for_batches():
    class Batched(Squares):
        def __getitems__(self, indices):
            return [(np.zeros(1, np.float32), 0, "b") for _ in indices]

    names = [b[2] for b in DataLoader(Batched(5), batch_size=2)]
    assert names == [["b", "b"]] * 2 + [["b"]]


def test_unbatched_loading_converts_each_sample():
    samples = list(DataLoader(Squares(3), batch_size=None))
    assert len(samples) == 3 and isinstance(samples[0], list)
    assert isinstance(samples[1][0], minigan.Tensor) and samples[1][1] == 1


def test_iterable_dataset_batches():
    assert [b.tolist() for b in DataLoader(Count(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5],
                                                                       [6]]
    assert [b.tolist() for b in DataLoader(Count(7), batch_size=3, drop_last=True)] == [
        [0, 1, 2], [3, 4, 5]]
    assert len(DataLoader(Count(7), batch_size=3)) == 3
    assert len(DataLoader(Count(7), batch_size=3, drop_last=True)) == 2
    assert list(DataLoader(Count(3), batch_size=None)) == [0, 1, 2]


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(sampler=SequentialSampler(range(4)), shuffle=True), "mutually exclusive with shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], shuffle=True), "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], sampler=[0]), "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], drop_last=True), "batch_sampler option is mutually exclusive"),
    (dict(batch_size=None, drop_last=True), "mutually exclusive with drop_last"),
    (dict(batch_size=0), "batch_size=0"),
    (dict(num_workers=-1), "non-negative"),
    (dict(timeout=-1), "non-negative"),
    (dict(prefetch_factor=2), "prefetch_factor"),
    (dict(persistent_workers=True), "num_workers > 0"),
    (dict(multiprocessing_context="spawn"), "multi-process"),
])
def test_loader_argument_errors(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        DataLoader(_dataset(4), **kwargs)


def test_iterable_dataset_refuses_shuffle_and_samplers():
    for kwargs in (dict(shuffle=True), dict(sampler=[0]), dict(batch_sampler=[[0]])):
        with pytest.raises(ValueError, match="IterableDataset: expected unspecified"):
            DataLoader(Count(3), **kwargs)


def test_num_workers_above_zero_is_refused_by_name():
    with pytest.raises(NotImplementedError, match="num_workers=2"):
        DataLoader(_dataset(4), batch_size=2, num_workers=2)


def test_accepted_no_ops_and_frozen_attributes():
    loader = DataLoader(_dataset(4), 2, False, None, None, 0, None, True, False, 0, None,
                        pin_memory_device="cuda", in_order=False)  # torch's positional order
    assert loader.pin_memory is True and loader.batch_size == 2 and len(list(loader)) == 2
    assert isinstance(loader.sampler, SequentialSampler)
    assert isinstance(loader.batch_sampler, BatchSampler) and loader.collate_fn is default_collate
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        loader.batch_size = 3
    assert mud.get_worker_info() is None


def test_ported_torch_training_loop():
    """A torch-style loop with `torch` replaced by `minigan`: fit y = 2 x0 - 3 x1 + 1."""
    minigan.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = (x @ np.array([[2.0], [-3.0]], np.float32) + 1.0).astype(np.float32)
    loader = DataLoader(TensorDataset(minigan.tensor(x), minigan.tensor(y)), batch_size=16,
                        shuffle=True)
    model = minigan.nn.Linear(2, 1)
    opt = minigan.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = minigan.nn.MSELoss()
    losses = []
    for _ in range(30):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert len(losses) == 30 * 4
    assert losses[-1] < 1e-3 < losses[0]
    np.testing.assert_allclose(model.weight.numpy(), [[2.0, -3.0]], atol=0.02)
    np.testing.assert_allclose(model.bias.numpy(), [1.0], atol=0.02)


# ----------------------------------------------------------------------------- devices

def test_batches_live_on_the_data_device(device):
    ds = _dataset(9, device)
    for shuffle in (False, True):
        fast = list(DataLoader(ds, batch_size=4, shuffle=shuffle, generator=Generator(1)))
        slow = list(DataLoader(ds, batch_size=4, shuffle=shuffle, generator=Generator(1),
                               collate_fn=_general))
        for f, s in zip(fast, slow):
            for a, b in zip(f, s):
                assert a.device == b.device == device
                np.testing.assert_array_equal(a.numpy(), b.numpy())
    custom = next(iter(DataLoader(Subset(ds, [8, 0]), batch_sampler=[[1, 0]])))
    assert custom[1].device == device and custom[1].tolist() == [0, 8]
    if device == "cuda":
        with pytest.raises(backend.DeviceError, match="tensor 0 on cuda, tensor 1 on cpu"):
            TensorDataset(ds.tensors[0], minigan.zeros(9))


# ----------------------------------------------------------------------------- torch, if present

def test_structure_matches_torch():
    torch = pytest.importorskip("torch")
    tud = torch.utils.data
    for n in (0, 1, 7, 10, 11, 101):
        for lengths in ([0.3, 0.7], [0.3, 0.3, 0.4], [0.25] * 4, [0.1] * 10, [1.0]):
            if n == 0:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # both warn about empty splits
                ours = [len(p) for p in random_split(range(n), lengths)]
                theirs = [len(p) for p in tud.random_split(range(n), lengths)]
            assert ours == theirs, (n, lengths)
        for bs in (1, 3, 4):
            for drop_last in (False, True):
                ref = tud.DataLoader(tud.TensorDataset(torch.arange(n)), batch_size=bs,
                                     drop_last=drop_last)
                mine = DataLoader(TensorDataset(minigan.arange(n)), batch_size=bs,
                                  drop_last=drop_last)
                assert len(mine) == len(ref)
                assert [[v.tolist() for v in b] for b in mine] == \
                    [[v.tolist() for v in b] for b in ref]
    batch = [({"a": 1, "b": 2.0, "c": True}, np.float32(1), np.zeros(2, np.uint8), [1, 2.5])] * 2
    ours, theirs = default_collate(batch), tud.default_collate(batch)

    def dtypes(x):
        if isinstance(x, dict):
            return {k: dtypes(v) for k, v in x.items()}
        if isinstance(x, list):
            return [dtypes(v) for v in x]
        return str(x.dtype).replace("torch.", "")

    assert dtypes(ours) == dtypes(theirs)


def test_nested_batch_indices_are_fetched_sample_by_sample_as_torch():
    x = minigan.tensor(np.arange(24.0).reshape(12, 2))
    y = minigan.tensor(np.arange(12))
    ds = TensorDataset(x, y)
    loader = DataLoader(ds, sampler=BatchSampler(SequentialSampler(ds), 3, False), batch_size=2)
    bx, by = next(iter(loader))
    assert bx.shape == (2, 3, 2) and by.shape == (2, 3)  # not flattened to (6, 2)
    assert by.tolist() == [[0, 1, 2], [3, 4, 5]]
    bx, by = next(iter(DataLoader(ds, batch_sampler=[[[0, 1], [2, 3]]])))
    assert bx.shape == (2, 2, 2) and by.tolist() == [[0, 1], [2, 3]]
    bx, by = next(iter(DataLoader(ds, batch_sampler=[[np.int64(5), minigan.tensor(1)]])))
    assert by.tolist() == [5, 1]  # flat integers (NumPy ints, 0-d tensors) still gathered


def test_generator_state_bytes_round_trip():
    from minigan.random import Generator
    g = Generator(7)
    state = g.state_bytes()
    a = g.uniform((4,))
    g.set_state(state)
    assert np.array_equal(g.uniform((4,)), a)
