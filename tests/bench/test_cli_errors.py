"""``python -m bench`` on bad input: one line ``error: SUBJECT: PROBLEM; HINT``, exit status 2,
no traceback, and nothing written.

Each row runs the real command in a subprocess, inside its own directory (its config, a
pre-populated ``--out`` and whatever files it needs); the directory's bytes are compared before
and after. The rows run two at a time; config, file, directory and argument errors fail before
JAX is imported (about 0.3 s each on an idle core); data files and activation names are
checked after the activation library, hence JAX, is imported (about 1.5 s).
"""

from __future__ import annotations

import concurrent.futures
import functools
import gzip
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from _bench_util import TINY, bench_env, write_toml

from bench import cli, config

Setup = Callable[[Path], None]


def sweep_file(**overrides) -> Setup:
    """A sweep file ``sweep.toml``: TINY with overrides (None deletes a key)."""

    def setup(d: Path) -> None:
        cfg = {k: v for k, v in {**TINY, **overrides}.items() if v is not None}
        write_toml(d / "sweep.toml", cfg)

    return setup


def text_file(name: str, text: str) -> Setup:
    return lambda d: (d / name).write_text(text)


def _idx(a: np.ndarray) -> bytes:
    """An IDX file (LeCun's format): 0, 0, uint8 type code 0x08, ndim, big-endian dims, data."""
    return (
        bytes([0, 0, 0x08, a.ndim]) + b"".join(n.to_bytes(4, "big") for n in a.shape) + a.tobytes()
    )


def fashion(damage: Callable[[Path], None]) -> Setup:
    """A 6/3-example Fashion-MNIST in ``fm/`` (gzipped IDX) with one file damaged."""

    def setup(d: Path) -> None:
        rng = np.random.default_rng(0)
        root = d / "fm"
        root.mkdir()
        for stem, shape in (
            ("train-images-idx3-ubyte", (6, 28, 28)),
            ("train-labels-idx1-ubyte", (6,)),
            ("t10k-images-idx3-ubyte", (3, 28, 28)),
            ("t10k-labels-idx1-ubyte", (3,)),
        ):
            a = rng.integers(0, 10, shape, dtype=np.uint8)
            (root / f"{stem}.gz").write_bytes(gzip.compress(_idx(a)))
        damage(root / "train-images-idx3-ubyte.gz")
        sweep_file(dataset="fashion-mnist", data={}, data_dir=str(root), eval_size=2)(d)

    return setup


def cifar(kind: str, damage: Callable[[Path], None]) -> Setup:
    """A 2-examples-per-batch CIFAR-10 in ``c10/`` (binary or pickle) with one file damaged."""

    def setup(d: Path) -> None:
        rng = np.random.default_rng(0)
        root = d / "c10"
        root.mkdir()
        for b in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            x = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
            y = rng.integers(0, 10, 2, dtype=np.uint8)
            if kind == "bin":  # label byte, then the 3072 pixel bytes, per record
                (root / f"{b}.bin").write_bytes(np.concatenate([y[:, None], x], 1).tobytes())
            else:
                blob = pickle.dumps({b"data": x, b"labels": [int(v) for v in y]}, protocol=2)
                (root / b).write_bytes(blob)
        damage(root / ("data_batch_2.bin" if kind == "bin" else "data_batch_2"))
        sweep_file(dataset="cifar10", data={}, data_dir=str(root), eval_size=2)(d)

    return setup


def cut(n: int) -> Callable[[Path], None]:
    """Drop the last n bytes of a file."""
    return lambda p: p.write_bytes(p.read_bytes()[:-n])


def flip(pos: int) -> Callable[[Path], None]:
    """Invert one byte: inside the deflate stream, zlib fails ("invalid distances set")."""

    def damage(p: Path) -> None:
        b = bytearray(p.read_bytes())
        b[pos] ^= 0xFF
        p.write_bytes(bytes(b))

    return damage


def short_idx_gz(p: Path) -> None:
    """A valid gzip whose IDX header promises more images than follow."""
    p.write_bytes(gzip.compress(gzip.decompress(p.read_bytes())[:-100]))


def garbage(p: Path) -> None:
    p.write_bytes(bytes(range(256)) * 4)


def regular_file(d: Path) -> None:
    sweep_file()(d)
    (d / "afile").write_text("not a directory\n")


def read_only_out(d: Path) -> None:
    sweep_file()(d)
    (d / "ro").mkdir()
    (d / "ro" / "keep.txt").write_text("old result\n")
    (d / "ro").chmod(0o555)


def no_records(d: Path) -> None:
    (d / "run").mkdir()
    (d / "run" / "config.json").write_text("{}\n")


class Row(NamedTuple):
    id: str
    setup: Setup
    argv: list[str]  # "{d}": the row's directory; "--out {d}/out" is added to sweeps without one
    expect: list[str]  # fragments of the one stderr line
    absent: tuple[str, ...] = ()  # fragments it must not contain
    permissions: bool = False  # relies on permission bits, which root ignores


SWEEP = ["sweep", "{d}/sweep.toml"]
ROWS = [
    # values of every kind of key
    Row("int-range", sweep_file(depth=0), SWEEP, ["depth:", "got 0", "use an integer in [1, 200]"]),
    Row(
        "int-type",
        sweep_file(batch_size="big"),
        SWEEP,
        ["batch_size:", "expected an integer", "use e.g. batch_size = 128"],
    ),
    Row(
        "float-negative-lr",
        sweep_file(lr=-0.1),
        SWEEP,
        ["lr:", "must be > 0", "use a positive number"],
    ),
    Row(
        "float-type",
        sweep_file(init_scale="wide"),
        SWEEP,
        ["init_scale:", "expected a number", "use e.g."],
    ),
    Row(
        "choice-optimizer",
        sweep_file(optimizer="adamw"),
        SWEEP,
        ["optimizer:", "'adamw'", "did you mean 'adam'?"],
    ),
    Row("choice-init", sweep_file(init="he_norml"), SWEEP, ["init:", "did you mean 'he_normal'"]),
    Row(
        "choice-dataset",
        sweep_file(dataset="fashion_mnist"),
        SWEEP,
        ["dataset:", "did you mean 'fashion-mnist'?"],
    ),
    Row("choice-model", sweep_file(model="MLP"), SWEEP, ["model:", "'MLP'", "did you mean 'mlp'?"]),
    Row(
        "choice-strategy",
        sweep_file(strategy="vmapp"),
        SWEEP,
        ["strategy:", "did you mean 'vmap'?"],
    ),
    Row("axis-empty-list", sweep_file(lr=[]), SWEEP, ["lr:", "empty list", "at least one value"]),
    Row("axis-bad-element", sweep_file(depth=[2, 0]), SWEEP, ["depth:", "got 0"]),
    Row(
        "channels-zero", sweep_file(model="cnn", channels=[8, 0]), SWEEP, ["channels:", "[1, 4096]"]
    ),
    Row(
        "channels-not-list",
        sweep_file(model="cnn", channels="wide"),
        SWEEP,
        ["channels:", "e.g. channels = [32, 32, 64]"],
    ),
    Row(
        "data-option-typo",
        sweep_file(data={"n_trian": 10}),
        SWEEP,
        ["n_trian:", "did you mean 'n_train'?"],
    ),
    Row(
        "data-option-value",
        sweep_file(data={"num_classes": 1}),
        SWEEP,
        ["num_classes:", "must be >= 2", "use an integer >= 2"],
    ),
    Row(
        "target-above-1", sweep_file(target=1.5), SWEEP, ["target:", "(0, 1)", "e.g. target = 0.25"]
    ),
    Row("target-zero", sweep_file(target=0.0), SWEEP, ["target:", "(0, 1)"]),
    Row(
        "depth-zero-via-set",
        sweep_file(),
        [*SWEEP, "--set", "depth=0"],
        ["depth:", "(from --set depth=0)", "use an integer"],
    ),
    Row(
        "eval-every-divides",
        sweep_file(eval_every=3),
        SWEEP,
        ["eval_every:", "does not divide 20", "divisor"],
    ),
    Row(
        "eval-size-vs-data",
        sweep_file(eval_size=1000),
        SWEEP,
        ["eval_size:", "256 training examples", "use eval_size <= 256"],
    ),
    Row(
        "experiment-name",
        sweep_file(experiment="a/b"),
        SWEEP,
        ["experiment:", "directory name", "use a name"],
    ),
    Row(
        "unknown-key",
        sweep_file(activaton="relu"),
        SWEEP,
        ["activaton: unknown key", "sweep.toml", "did you mean 'activation'?"],
    ),
    Row(
        "unknown-activation",
        sweep_file(activation="relux"),
        SWEEP,
        ["activation:", "'relux'", "did you mean 'relu'"],
    ),
    # positive control: the alias passes, so the error is the next one (eval_size)
    Row(
        "alias-accepted",
        sweep_file(activation=["swish", "hard_swish"], eval_size=1000),
        SWEEP,
        ["eval_size:"],
        absent=("activation",),
    ),
    # files
    Row(
        "missing-config",
        lambda d: None,
        ["sweep", "{d}/nope.toml"],
        ["nope.toml: no such file", "give a sweep TOML file"],
    ),
    Row(
        "toml-syntax",
        text_file("bad.toml", 'experiment = "x"\ndepth = 2\nwidth 8\n'),
        ["sweep", "{d}/bad.toml"],
        ["bad.toml:3:", "invalid TOML", "fix line 3"],
    ),
    Row(
        "toml-unclosed-at-end",
        text_file("bad.toml", 'experiment = "x"\nlr = [0.1,\n'),
        ["sweep", "{d}/bad.toml"],
        ["bad.toml:2", "invalid TOML"],
    ),
    Row(
        "directory-as-config",
        lambda d: (d / "cfg").mkdir(),
        ["sweep", "{d}/cfg"],
        ["cfg: is a directory", "give a sweep TOML file"],
    ),
    Row(
        "binary-config",
        lambda d: (d / "x.toml").write_bytes(b"\xff\xfe\x00"),
        ["sweep", "{d}/x.toml"],
        ["x.toml: not UTF-8"],
    ),
    # directories
    Row(
        "out-under-file",
        regular_file,
        [*SWEEP, "--out", "{d}/afile/sub"],
        ["--out", "afile", "a file, not a directory", "choose another --out"],
    ),
    Row(
        "out-is-file",
        regular_file,
        [*SWEEP, "--out", "{d}/afile"],
        ["--out", "is a file, not a directory"],
    ),
    Row(
        "out-read-only",
        read_only_out,
        [*SWEEP, "--out", "{d}/ro/new"],
        ["--out", "permission denied", "choose a writable --out"],
        permissions=True,
    ),
    Row(
        "report-missing-dir",
        lambda d: None,
        ["report", "{d}/no-such-run"],
        ["run_dir:", "is not a directory", "give a run directory"],
    ),
    Row(
        "report-no-records",
        no_records,
        ["report", "{d}/run"],
        ["run_dir:", "has no records.jsonl", "give a run directory"],
    ),
    # --set syntax
    Row(
        "set-no-equals",
        sweep_file(),
        [*SWEEP, "--set", "depth"],
        ["--set depth: expected KEY=VALUE", "e.g. --set depth=8"],
    ),
    Row(
        "set-invalid-toml",
        sweep_file(),
        [*SWEEP, "--set", "lr=[0.1, 0.01"],
        ["--set lr=[0.1, 0.01:", "not a valid TOML value", "--set 'lr=[0.1, 0.01]'"],
    ),
    Row(
        "set-unknown-key",
        sweep_file(),
        [*SWEEP, "--set", "activaton=relu"],
        ["activaton: unknown key", "--set activaton=relu", "did you mean 'activation'?"],
    ),
    # damaged data files
    Row(
        "idx-gz-cut",
        fashion(cut(40)),
        SWEEP,
        ["data_dir:", "train-images-idx3-ubyte.gz", "download it again"],
    ),
    Row(
        "idx-gz-corrupt",
        fashion(flip(30)),
        SWEEP,
        ["data_dir:", "train-images-idx3-ubyte.gz", "decompressing", "download it again"],
    ),
    Row(
        "idx-short",
        fashion(short_idx_gz),
        SWEEP,
        ["data_dir:", "train-images-idx3-ubyte.gz is truncated", "download it again"],
    ),
    Row(
        "idx-not-gzip",
        fashion(garbage),
        SWEEP,
        ["data_dir:", "train-images-idx3-ubyte.gz", "download it again"],
    ),
    Row(
        "cifar-bin-cut",
        cifar("bin", cut(10)),
        SWEEP,
        ["data_dir:", "data_batch_2.bin is truncated", "download it again"],
    ),
    Row(
        "cifar-pickle-garbage",
        cifar("py", garbage),
        SWEEP,
        ["data_dir:", "cannot read CIFAR-10 pickle", "data_batch_2", "download it again"],
    ),
    # arguments of the other commands
    Row(
        "unknown-command",
        lambda d: None,
        ["swep", "x.toml"],
        ["unknown command 'swep'", "did you mean 'sweep'?"],
    ),
    Row(
        "missing-argument",
        lambda d: None,
        ["sweep"],
        ["python -m bench sweep:", "required: config", "--help"],
    ),
    Row(
        "unknown-option",
        sweep_file(),
        [*SWEEP, "--outt", "{d}/x"],
        ["--outt: unrecognized argument", "python -m bench sweep --help"],
    ),
    Row(
        "cpu-devices-zero",
        sweep_file(),
        [*SWEEP, "--cpu-devices", "0"],
        ["--cpu-devices:", "must be >= 1, got 0", "python -m bench sweep --help"],
    ),
    Row(
        "attenuation-depth",
        lambda d: None,
        ["attenuation", "--depth", "1", "--out", "{d}/out"],
        ["--depth:", "must be >= 2, got 1", "python -m bench attenuation --help"],
    ),
    Row(
        "reproduce-claim",
        lambda d: None,
        ["reproduce", "relu-vs-tan", "--out", "{d}/out"],
        ["invalid choice 'relu-vs-tan'", "did you mean 'relu-vs-tanh'?"],
    ),
    Row(
        "attenuation-activation",
        lambda d: None,
        ["attenuation", "--activation", "swishy", "--out", "{d}/out"],
        ["--activation:", "'swishy'", "did you mean"],
    ),
    Row(
        "perf-out",
        regular_file,
        ["perf", "--out", "{d}/afile/perf"],
        ["--out", "a file, not a directory"],
    ),
]


def _populate(out: Path) -> None:
    """A results root holding an earlier run: the rows must leave it byte for byte."""
    run = out / "tiny" / "tiny-0123456789"
    (run / "curves").mkdir(parents=True)
    (run / "config.json").write_text('{"experiment": "tiny"}\n')
    (run / "records.jsonl").write_text('{"config_id": "c00000"}\n')
    (run / "curves" / "g000.npz").write_bytes(b"\x00" * 64)


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under root -> its bytes (None for a directory)."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


# Root ignores permission bits unless it gives up CAP_DAC_OVERRIDE: run such rows that way.
_AS_ROOT = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@functools.cache
def _can_drop_root_override() -> bool:
    try:
        return subprocess.run([*_AS_ROOT, "true"], capture_output=True).returncode == 0
    except OSError:  # no setpriv
        return False


def _prefix(row: Row) -> list[str]:
    return _AS_ROOT if row.permissions and os.geteuid() == 0 else []


def _skipped(row: Row) -> bool:
    return bool(_prefix(row)) and not _can_drop_root_override()


def _run_row(row: Row, base: Path) -> dict:
    d = base / row.id
    d.mkdir()
    _populate(d / "out")
    row.setup(d)
    argv = [a.replace("{d}", str(d)) for a in row.argv]
    if argv[0] == "sweep" and "--out" not in argv:
        argv += ["--out", str(d / "out")]
    before = _snapshot(d)
    env = {**bench_env(), "ACTIVATIONS_BENCH_NO_DISK_CACHE": "1"}  # no cache files either
    t0 = time.perf_counter()
    # cwd = the row's directory: a default --out (results/) would land there and be seen.
    p = subprocess.run(
        [*_prefix(row), sys.executable, "-m", "bench", *argv],
        cwd=d,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return {
        "rc": p.returncode,
        "stderr": p.stderr,
        "seconds": time.perf_counter() - t0,
        "before": before,
        "after": _snapshot(d),
        "argv": argv,
    }


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every row's outcome; the subprocesses run two at a time."""
    base = tmp_path_factory.mktemp("cli_errors")
    rows = [r for r in ROWS if not _skipped(r)]
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = dict(
            zip([r.id for r in rows], pool.map(lambda r: _run_row(r, base), rows), strict=True)
        )
    print(f"\n{len(rows)} bad-input rows in {time.perf_counter() - t0:.1f} s (2 at a time)")
    yield results
    ro = base / "out-read-only" / "ro"
    if ro.exists():
        ro.chmod(0o755)  # let pytest clean up


def test_rows_cover_enough_bad_inputs():
    assert len(ROWS) >= 25 and len({r.id for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_is_one_line_exit_2_nothing_written(row, outcomes):
    if _skipped(row):
        pytest.skip("root that cannot drop CAP_DAC_OVERRIDE ignores permission bits")
    o = outcomes[row.id]
    err = o["stderr"]
    lines = [line for line in err.splitlines() if line.strip()]
    assert o["rc"] == 2, (o["argv"], err)
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    line = lines[0]
    assert "; " in line, f"no hint after '; ': {line}"
    for fragment in row.expect:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    for fragment in row.absent:
        assert fragment not in line, f"{fragment!r} in {line!r}"
    assert o["after"] == o["before"], "files under the row's directory changed"


def test_debug_shows_the_traceback(tmp_path):
    write_toml(tmp_path / "s.toml", {**TINY, "depth": 0})
    for argv in (["--debug", "sweep", "s.toml"], ["sweep", "s.toml", "--debug"]):
        p = subprocess.run(
            [sys.executable, "-m", "bench", *argv],
            cwd=tmp_path,
            env=bench_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 1, p.stderr
        assert "Traceback" in p.stderr and "UsageError: depth: must be in [1, 200]" in p.stderr


def test_config_errors_come_before_jax_is_imported(tmp_path):
    write_toml(tmp_path / "s.toml", {**TINY, "depth": 0})
    code = (
        "import sys; from bench import cli; "
        "rc = cli.main(['sweep', 's.toml', '--out', 'out']); "
        "print(rc, 'jax' in sys.modules)"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.stdout.split() == ["2", "False"], (p.stdout, p.stderr)


def test_a_bug_is_not_reported_as_bad_input(tmp_path, monkeypatch):
    # Only UsageError means bad input: any other ValueError is a bug and must propagate.
    def bug(*a, **k):
        raise ValueError("an internal bug")

    monkeypatch.setattr(config, "load", bug)
    write_toml(tmp_path / "s.toml", TINY)
    with pytest.raises(ValueError, match="an internal bug"):
        cli.main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_aliases_resolve_to_the_canonical_name():
    # One run id whichever spelling a file used; duplicates after resolution collapse.
    a = config.parse({**TINY, "activation": ["silu", "swish", "hard_swish"]})
    assert a.axes["activation"] == ("silu", "hard_silu")
    b = config.parse({**TINY, "activation": ["swish", "hard_silu"]})
    assert a.run_id() == b.run_id()
    assert a.resolved()["activation"] == ["silu", "hard_silu"]
