"""bench.data on tiny files written here: formats, layouts, errors, and the safe unpickler."""

import gzip
import io
import os
import pickle
import random
import struct

import numpy as np
import pytest

from bench import data

# --------------------------------------------------------------------------- helpers


def _idx_bytes(a: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file: 0, 0, type code, ndim, big-endian uint32 dims, then the data."""
    head = bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return head + a.astype(">u1" if code == 0x08 else a.dtype).tobytes()


def _write_fashion(root, n_train=6, n_test=3, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    root.mkdir(parents=True, exist_ok=True)
    for stem, a in arrays.items():
        raw = _idx_bytes(a)
        if gz:
            (root / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (root / stem).write_bytes(raw)
    return arrays


def _expected_images(raw_train, raw_test):
    """The documented transform: /255, then per-channel standardisation with train stats."""
    tr = raw_train.astype(np.float64) / 255
    te = raw_test.astype(np.float64) / 255
    mean, std = tr.mean(axis=(0, 1, 2)), tr.std(axis=(0, 1, 2))
    return (tr - mean) / std, (te - mean) / std


def _expected_mean_subtracted(raw_train, raw_test):
    """cuda-convnet's transform: 0-255 pixels minus the per-pixel mean training image."""
    mean = raw_train.astype(np.float64).mean(axis=0)  # (H, W, C): over examples only
    return raw_train.astype(np.float64) - mean, raw_test.astype(np.float64) - mean


# Pixels are at most 255 in magnitude: float32 keeps them to 255 * 2^-24 = 1.5e-5.
MEAN_SUBTRACT_ATOL = 1e-4


def _cifar_arrays(n_per_batch=2, seed=0):
    """{batch name: (uint8 (n, 3072) channel-major rows, labels)} for the six batches."""
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {
        b: (
            rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            rng.integers(0, 10, n_per_batch, dtype=np.uint8),
        )
        for b in names
    }


def _write_cifar_bin(root, arrays):
    root.mkdir(parents=True, exist_ok=True)
    for b, (x, y) in arrays.items():
        (root / f"{b}.bin").write_bytes(np.concatenate([y[:, None], x], axis=1).tobytes())


def _write_cifar_pickle(root, arrays, protocol=2):
    root.mkdir(parents=True, exist_ok=True)
    for b, (x, y) in arrays.items():
        # The real batches: bytes keys, labels as a list of ints, data a uint8 array.
        d = {
            b"batch_label": b.encode(),
            b"labels": [int(v) for v in y],
            b"data": x,
            b"filenames": [f"{i}.png".encode() for i in range(len(y))],
        }
        (root / b).write_bytes(pickle.dumps(d, protocol=protocol))


def _py2_batch_pickle(x, labels):
    """The bytes Python 2's cPickle.dump(batch, f, 2) writes, as in the official CIFAR-10
    download: py2 str (SHORT_BINSTRING/BINSTRING) keys and array data, numpy.core globals."""

    def s(b):
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    def i(v):
        return b"K" + bytes([v]) if v < 256 else b"J" + struct.pack("<i", v)

    dtype = (
        b"cnumpy\ndtype\n" + s(b"u1") + b"\x89\x88\x87R"  # dtype("u1", False, True)
        + b"(" + i(3) + s(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + i(0) + b"tb"
    )  # fmt: skip
    arr = (
        b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + i(0) + b"\x85"
        + s(b"b") + b"\x87R"  # _reconstruct(ndarray, (0,), "b")
        + b"(" + i(1) + i(x.shape[0]) + i(x.shape[1]) + b"\x86" + dtype + b"\x89"
        + s(x.tobytes()) + b"tb"  # __setstate__((1, shape, dtype, False, raw))
    )  # fmt: skip
    labs = b"](" + b"".join(i(int(v)) for v in labels) + b"e"
    return b"\x80\x02}(" + s(b"data") + arr + s(b"labels") + labs + b"u."


def _hwc(arrays, names):
    x = np.concatenate([arrays[b][0] for b in names])
    return x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    # Never touch the user's real cache, and never reuse another test's disk cache.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("ACTIVATIONS_BENCH_NO_DISK_CACHE", raising=False)


# --------------------------------------------------------------------------- names and options


def test_names():
    assert set(data.names()) == {"mnist1d", "fashion-mnist", "cifar10", "teacher-student"}


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("foo", {}, r"^dataset: unknown 'foo', valid: mnist1d"),
        ("mnist1d", {"num_sample": 10}, r"^num_sample: unknown option .*valid: num_samples, seed"),
        ("mnist1d", {"num_samples": 105}, r"^num_samples: must be a multiple of 10"),
        ("mnist1d", {"num_samples": True}, r"^num_samples: expected an integer"),
        ("teacher-student", {"num_classes": 1}, r"^num_classes: must be >= 2"),
        ("teacher-student", {"teacher_activation": "gelu"}, r"^teacher_activation: expected"),
        ("fashion-mnist", {"limit_train": 0}, r"^limit_train: must be >= 1"),
        (
            "fashion-mnist",
            {"preprocess": "zca"},
            r"^preprocess: expected one of standardise, mean_subtract, got 'zca'; valid: ",
        ),
        ("cifar10", {"preprocess": "mean_subtrct"}, r"^preprocess: .*did you mean 'mean_sub"),
        ("cifar10", {"preprocess": None}, r"^preprocess: expected one of standardise, mean_"),
        ("mnist1d", {"preprocess": "standardise"}, r"^preprocess: unknown option for dataset"),
    ],
)
def test_bad_names_and_options_raise_naming_the_key(name, options, match):
    with pytest.raises(ValueError, match=match):
        data.validate(name, **options)
    with pytest.raises(ValueError, match=match):
        data.load(name, **options)


def test_generated_datasets_validate_and_ignore_data_dir(tmp_path):
    # One sweep-wide data_dir may be set for a sweep that also runs generated datasets.
    data.validate("mnist1d", str(tmp_path / "nowhere"))
    data.validate("teacher-student", None, n_train=5)


# --------------------------------------------------------------------------- mnist1d


def test_mnist1d_shapes_cache_and_no_writes_to_cwd(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    rng_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002

    ds = data.load("mnist1d", num_samples=100, seed=3)

    assert os.listdir(cwd) == []  # mnist1d's get_dataset would leave a pickle here
    assert ds.name == "mnist1d" and ds.num_classes == 10
    assert ds.x_train.shape == (80, 40) and ds.x_test.shape == (20, 40)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert ds.y_train.shape == (80,) and set(np.unique(ds.y_train)) <= set(range(10))
    # make_dataset reseeds the global generators; load must restore them.
    assert random.getstate() == py_state
    after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(a, b) for a, b in zip(after, rng_state, strict=True))
    # Memoised: the same read-only arrays come back.
    again = data.load("mnist1d", seed=3, num_samples=100)
    assert again.x_train is ds.x_train
    assert not ds.x_train.flags.writeable
    # The disk cache (under the test's XDG_CACHE_HOME) reproduces the arrays exactly.
    (entry,) = (tmp_path / "xdg-cache" / "activations-bench").glob("mnist1d-*.npz")
    data._load_mnist1d.cache_clear()
    from_disk = data.load("mnist1d", num_samples=100, seed=3)
    assert from_disk.x_train is not ds.x_train
    for a, b in zip(from_disk[:4], ds[:4], strict=True):
        np.testing.assert_array_equal(a, b)
    assert entry.is_file() and os.listdir(cwd) == []


def test_mnist1d_seed_changes_the_data(monkeypatch):
    monkeypatch.setenv("ACTIVATIONS_BENCH_NO_DISK_CACHE", "1")
    a = data.load("mnist1d", num_samples=50, seed=0)
    b = data.load("mnist1d", num_samples=50, seed=1)
    assert a.x_train.shape == (40, 40)
    assert not np.array_equal(a.x_train, b.x_train)


# --------------------------------------------------------------------------- teacher-student


def test_teacher_student_deterministic_in_seed():
    kw = dict(n_train=64, n_test=16, input_dim=5, teacher_width=8, num_classes=3)
    a = data.load("teacher-student", seed=7, **kw)
    data._load_teacher_student.cache_clear()
    b = data.load("teacher-student", seed=7, **kw)
    c = data.load("teacher-student", seed=8, **kw)
    assert a.x_train.shape == (64, 5) and a.x_test.shape == (16, 5) and a.num_classes == 3
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int32
    for u, v in zip(a[:4], b[:4], strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.y_train, c.y_train)
    assert set(np.unique(a.y_train)) <= {0, 1, 2}
    # Separate random streams: the test-set size does not change the training set.
    d = data.load("teacher-student", seed=7, **{**kw, "n_test": 99})
    np.testing.assert_array_equal(a.x_train, d.x_train)
    np.testing.assert_array_equal(a.y_train, d.y_train)


def test_teacher_student_uses_every_class():
    ds = data.load("teacher-student", n_train=2000, num_classes=10, teacher_activation="relu")
    assert np.bincount(ds.y_train, minlength=10).min() > 50


# --------------------------------------------------------------------------- fashion-mnist


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_round_trip(tmp_path, gz):
    raw = _write_fashion(tmp_path / "fm", gz=gz)
    data.validate("fashion-mnist", tmp_path / "fm")
    ds = data.load("fashion-mnist", data_dir=tmp_path / "fm")

    assert ds.x_train.shape == (6, 28, 28, 1) and ds.x_test.shape == (3, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_test.dtype == np.int32
    np.testing.assert_array_equal(ds.y_train, raw["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(ds.y_test, raw["t10k-labels-idx1-ubyte"])
    tr, te = _expected_images(
        raw["train-images-idx3-ubyte"][..., None], raw["t10k-images-idx3-ubyte"][..., None]
    )
    np.testing.assert_allclose(ds.x_train, tr, atol=1e-5)
    np.testing.assert_allclose(ds.x_test, te, atol=1e-5)
    assert abs(ds.x_train.mean()) < 1e-5 and abs(ds.x_train.std() - 1) < 1e-5


def test_fashion_mnist_limits_use_the_limited_training_stats(tmp_path):
    raw = _write_fashion(tmp_path)
    ds = data.load("fashion-mnist", data_dir=str(tmp_path), limit_train=4, limit_test=2)
    assert ds.x_train.shape == (4, 28, 28, 1) and ds.y_test.shape == (2,)
    np.testing.assert_array_equal(ds.y_train, raw["train-labels-idx1-ubyte"][:4])
    tr, _ = _expected_images(raw["train-images-idx3-ubyte"][:4, ..., None], np.zeros((1, 1, 1, 1)))
    np.testing.assert_allclose(ds.x_train, tr, atol=1e-5)


def test_fashion_mnist_standardise_is_the_default(tmp_path):
    raw = _write_fashion(tmp_path, n_train=8, n_test=4)
    default = data.load("fashion-mnist", data_dir=tmp_path)
    data._load_fashion.cache_clear()
    explicit = data.load("fashion-mnist", data_dir=tmp_path, preprocess="standardise")
    for u, v in zip(default[:4], explicit[:4], strict=True):
        np.testing.assert_array_equal(u, v)
    tr, te = _expected_images(
        raw["train-images-idx3-ubyte"][..., None], raw["t10k-images-idx3-ubyte"][..., None]
    )
    np.testing.assert_allclose(default.x_train, tr, atol=1e-5)
    np.testing.assert_allclose(default.x_test, te, atol=1e-5)


def test_fashion_mnist_mean_subtract_uses_the_loaded_training_images(tmp_path):
    # More training images on file than loaded: the mean is that of the first limit_train.
    raw = _write_fashion(tmp_path, n_train=12, n_test=5, seed=3)
    ds = data.load("fashion-mnist", data_dir=tmp_path, limit_train=7, preprocess="mean_subtract")
    assert ds.x_train.shape == (7, 28, 28, 1) and ds.x_test.shape == (5, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    np.testing.assert_array_equal(ds.y_train, raw["train-labels-idx1-ubyte"][:7])
    tr, te = _expected_mean_subtracted(
        raw["train-images-idx3-ubyte"][:7, ..., None], raw["t10k-images-idx3-ubyte"][..., None]
    )
    np.testing.assert_allclose(ds.x_train, tr, rtol=0, atol=MEAN_SUBTRACT_ATOL)
    np.testing.assert_allclose(ds.x_test, te, rtol=0, atol=MEAN_SUBTRACT_ATOL)
    # Every pixel of the training set has mean 0; the test set's do not (its own mean differs).
    assert np.abs(ds.x_train.mean(axis=0, dtype=np.float64)).max() < MEAN_SUBTRACT_ATOL
    assert np.abs(ds.x_test.mean(axis=0, dtype=np.float64)).max() > 1


def test_preprocess_is_part_of_the_cache_key(tmp_path):
    raw = _write_fashion(tmp_path, n_train=8, n_test=4, seed=5)
    x_train, x_test = raw["train-images-idx3-ubyte"][..., None], raw["t10k-images-idx3-ubyte"]
    std_tr, _ = _expected_images(x_train, x_test[..., None])
    sub_tr, _ = _expected_mean_subtracted(x_train, x_test[..., None])
    # Each switch of the option must give that option's arrays, never the previous load's.
    for how, want in [("standardise", std_tr), ("mean_subtract", sub_tr)] * 2:
        ds = data.load("fashion-mnist", data_dir=tmp_path, preprocess=how)
        np.testing.assert_allclose(ds.x_train, want, rtol=0, atol=MEAN_SUBTRACT_ATOL, err_msg=how)
    arrays = _cifar_arrays(seed=4)
    _write_cifar_bin(tmp_path / "c", arrays)
    for how, expected in [("mean_subtract", _expected_mean_subtracted), (None, _expected_images)]:
        ds = data.load("cifar10", data_dir=tmp_path / "c", **({"preprocess": how} if how else {}))
        tr, _ = expected(_hwc(arrays, TRAIN), _hwc(arrays, ["test_batch"]))
        np.testing.assert_allclose(ds.x_train, tr, rtol=0, atol=MEAN_SUBTRACT_ATOL, err_msg=how)


def test_fashion_mnist_missing_directory_and_file(tmp_path):
    with pytest.raises(ValueError, match=r"^data_dir: Fashion-MNIST directory .* does not exist"):
        data.validate("fashion-mnist", tmp_path / "absent")
    _write_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ValueError, match=r"^data_dir: .* has no t10k-labels-idx1-ubyte\(\.gz\)"):
        data.load("fashion-mnist", data_dir=tmp_path)


def test_fashion_mnist_bad_magic_is_caught_by_validate(tmp_path):
    _write_fashion(tmp_path, gz=False)
    f = tmp_path / "train-images-idx3-ubyte"
    f.write_bytes(b"\x1f\x8b" + f.read_bytes()[2:])
    with pytest.raises(ValueError, match=r"^data_dir: .*train-images-idx3-ubyte is not an IDX"):
        data.validate("fashion-mnist", tmp_path)


def test_fashion_mnist_wrong_rank_is_caught_by_validate(tmp_path):
    _write_fashion(tmp_path, gz=False)
    labels = np.zeros((6, 1), np.uint8)  # a 2-d "labels" file
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(labels))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte has 2 dimensions, not 1"):
        data.validate("fashion-mnist", tmp_path)


def test_fashion_mnist_truncated_file(tmp_path):
    _write_fashion(tmp_path, gz=False)
    f = tmp_path / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-10])
    data.validate("fashion-mnist", tmp_path)  # the header is fine; only a full read sees it
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte is truncated"):
        data.load("fashion-mnist", data_dir=tmp_path)


def test_fashion_mnist_count_mismatch_and_bad_labels(tmp_path):
    _write_fashion(tmp_path / "a", gz=False)
    (tmp_path / "a" / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(ValueError, match=r"has 6 images but .* has 5 labels"):
        data.load("fashion-mnist", data_dir=tmp_path / "a")
    _write_fashion(tmp_path / "b", gz=False)
    (tmp_path / "b" / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.full(6, 10, np.uint8)))
    with pytest.raises(ValueError, match=r"labels in .* outside \[0, 10\)"):
        data.load("fashion-mnist", data_dir=tmp_path / "b")


def test_idx_other_dtypes_parse(tmp_path):
    a = np.arange(6, dtype=">i4").reshape(2, 3)
    (tmp_path / "x").write_bytes(_idx_bytes(a, code=0x0C))
    out = data._read_idx(tmp_path / "x", 2)
    np.testing.assert_array_equal(out, a)
    assert out.dtype == np.int32 and out.dtype.isnative


# --------------------------------------------------------------------------- cifar10


def test_cifar_binary_round_trip_and_hwc_layout(tmp_path):
    arrays = _cifar_arrays()
    _write_cifar_bin(tmp_path / "cifar-10-batches-bin", arrays)
    # The extracted folder's parent is accepted too.
    data.validate("cifar10", tmp_path)
    ds = data.load("cifar10", data_dir=tmp_path)

    assert ds.x_train.shape == (10, 32, 32, 3) and ds.x_test.shape == (2, 32, 32, 3)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    np.testing.assert_array_equal(ds.y_train, np.concatenate([arrays[b][1] for b in TRAIN]))
    np.testing.assert_array_equal(ds.y_test, arrays["test_batch"][1])
    tr, te = _expected_images(_hwc(arrays, TRAIN), _hwc(arrays, ["test_batch"]))
    np.testing.assert_allclose(ds.x_train, tr, atol=1e-5)
    np.testing.assert_allclose(ds.x_test, te, atol=1e-5)
    # Pixel (row 2, col 5, green) of record 0 is byte 1024 + 2 * 32 + 5 of its record.
    raw = _hwc(arrays, TRAIN)
    assert raw[0, 2, 5, 1] == arrays["data_batch_1"][0][0, 1024 + 2 * 32 + 5]


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar_pickle_matches_binary(tmp_path, protocol):
    arrays = _cifar_arrays(seed=1)
    _write_cifar_bin(tmp_path / "bin", arrays)
    _write_cifar_pickle(tmp_path / "py", arrays, protocol=protocol)
    data.validate("cifar10", tmp_path / "py")
    a = data.load("cifar10", data_dir=tmp_path / "bin", limit_train=7)
    b = data.load("cifar10", data_dir=tmp_path / "py", limit_train=7)
    assert a.x_train.shape == (7, 32, 32, 3)
    for u, v in zip(a[:4], b[:4], strict=True):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("limit_train", [None, 7])
def test_cifar_mean_subtract(tmp_path, limit_train):
    arrays = _cifar_arrays(seed=6)
    _write_cifar_bin(tmp_path, arrays)
    opts = {"limit_train": limit_train, "preprocess": "mean_subtract"}
    ds = data.load("cifar10", data_dir=tmp_path, **opts)
    raw_train = _hwc(arrays, TRAIN)[:limit_train]
    assert ds.x_train.shape == (len(raw_train), 32, 32, 3) and ds.x_train.dtype == np.float32
    tr, te = _expected_mean_subtracted(raw_train, _hwc(arrays, ["test_batch"]))
    np.testing.assert_allclose(ds.x_train, tr, rtol=0, atol=MEAN_SUBTRACT_ATOL)
    np.testing.assert_allclose(ds.x_test, te, rtol=0, atol=MEAN_SUBTRACT_ATOL)
    assert not ds.x_train.flags.writeable


def test_cifar_python2_pickles_as_distributed(tmp_path):
    arrays = _cifar_arrays(seed=2)
    _write_cifar_bin(tmp_path / "bin", arrays)
    (tmp_path / "py").mkdir()
    for b, (x, y) in arrays.items():
        (tmp_path / "py" / b).write_bytes(_py2_batch_pickle(x, y))
    a = data.load("cifar10", data_dir=tmp_path / "bin")
    b = data.load("cifar10", data_dir=tmp_path / "py")
    for u, v in zip(a[:4], b[:4], strict=True):
        np.testing.assert_array_equal(u, v)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_malicious_pickle_is_refused_not_executed(tmp_path):
    arrays = _cifar_arrays()
    _write_cifar_pickle(tmp_path, arrays)
    marker = tmp_path / "pwned"
    evil = {b"data": arrays["data_batch_3"][0], b"labels": _Evil(marker)}
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps(evil, protocol=2))
    # Sanity: this pickle really would run the command through a plain pickle.load.
    assert b"system" in (tmp_path / "data_batch_3").read_bytes()

    with pytest.raises(
        ValueError, match=r"data_batch_3.*refused to load global (posix|nt)\.system"
    ):
        data.load("cifar10", data_dir=tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [eval, getattr, pickle.loads, np.load])
def test_unpickler_allows_only_numpy_array_globals(payload):
    blob = pickle.dumps(payload)
    with pytest.raises(pickle.UnpicklingError, match="refused to load global"):
        data._NumpyOnlyUnpickler(io.BytesIO(blob)).load()


def test_unpickler_codecs_only_latin1():
    # Protocol-2 pickles from Python 3 spell bytes as _codecs.encode(str, "latin1").
    ok = pickle.dumps(b"\x00\xff", protocol=2)
    assert data._NumpyOnlyUnpickler(io.BytesIO(ok)).load() == b"\x00\xff"
    bad = ok.replace(b"latin1", b"rot_13")
    with pytest.raises(pickle.UnpicklingError, match=r"refused _codecs\.encode"):
        data._NumpyOnlyUnpickler(io.BytesIO(bad)).load()


def test_cifar_pickle_with_wrong_contents(tmp_path):
    arrays = _cifar_arrays()
    _write_cifar_pickle(tmp_path, arrays)
    bad = {b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(ValueError, match=r"test_batch: 'data' is uint8 \(2, 10\), expected"):
        data.load("cifar10", data_dir=tmp_path)


def test_cifar_errors(tmp_path):
    with pytest.raises(ValueError, match=r"^data_dir: CIFAR-10 needs data_dir"):
        data.validate("cifar10")
    with pytest.raises(ValueError, match=r"^data_dir: CIFAR-10 directory '.*x' does not exist"):
        data.validate("cifar10", tmp_path / "x")
    with pytest.raises(ValueError, match=r"has no data_batch_1\.bin or data_batch_1$"):
        data.validate("cifar10", tmp_path)

    arrays = _cifar_arrays()
    _write_cifar_bin(tmp_path / "c", arrays)
    (tmp_path / "c" / "test_batch.bin").unlink()
    with pytest.raises(ValueError, match=r"^data_dir: CIFAR-10 file .*test_batch\.bin' is missing"):
        data.validate("cifar10", tmp_path / "c")

    _write_cifar_bin(tmp_path / "t", arrays)
    f = tmp_path / "t" / "data_batch_2.bin"
    f.write_bytes(f.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"data_batch_2\.bin is truncated"):
        data.load("cifar10", data_dir=tmp_path / "t")
