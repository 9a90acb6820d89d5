"""Sweeps finish under the CLI's default split of the CPU into per-core JAX devices.

jaxlib 0.10.2's batched LAPACK kernels (QR among them) split their batch over XLA's intra-op
thread pool and block the calling pool thread until the pieces are done. Under ``shard_map``
every device runs its program on that pool at the same time, so one such call per device can
take every pool thread, and the sweep waits forever at 0% CPU. ``init = "orthogonal"`` drew its
matrices with LAPACK's QR and hung that way at depth 60. The sweeps below run in subprocesses
with a timeout, so a hang fails the test instead of stalling the suite; the pool has at least
as many threads as devices, so the deadlock needs at least 2 devices: fewer usable cores than
that get ``--cpu-devices 2``.

The orthogonal init itself is checked against its definition: ``W^T W = g^2 I`` for a square
``W`` drawn with gain ``g = init_scale``, orthonormal columns (rows) for a tall (wide) one, and
the same matrices, up to rounding, as ``jax.nn.initializers.orthogonal`` from the same key.
"""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bench import cli, config, models
from tests.bench._bench_util import REPO, TINY, bench_env, write_toml

GAIN = 1.5
HP = {"init_scale": jnp.float32(GAIN), "bias_init": jnp.float32(0.0), "slope": jnp.float32(0.0)}
# Compiled once, run once: skip LLVM's expensive passes (IEEE semantics unchanged).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
TIMEOUT_S = 240  # a hang never ends; a sweep here took at most 125 s on 2 cores shared by ~7 jobs


def _sweep(args: list[str], tmp_path, fast_compile: bool = False) -> None:
    cmd = [sys.executable, "-m", "bench", "sweep", *args, "--out", str(tmp_path / "out")]
    cmd += ["--quiet", "--no-report"]
    if cli.usable_cores() < 2:
        cmd += ["--cpu-devices", "2"]
    env = bench_env()
    if fast_compile:
        env["XLA_FLAGS"] = " ".join(f"--{k}={str(v).lower()}" for k, v in FAST_COMPILE.items())
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"sweep did not finish in {TIMEOUT_S} s (deadlock?): {' '.join(cmd)}")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_deep_orthogonal_quick_sweep_finishes(tmp_path):
    # The reported command (quick.toml, orthogonal, depth 60) with one activation and fewer
    # steps. The deadlock is a race (both devices inside a 59-matrix QR at once): the 8
    # configurations a device runs one after another give it 8 chances; with 2 it was missed.
    sets = {
        "init": '"orthogonal"',
        "depth": "60",
        "activation": '"relu"',
        "steps": "10",
        "eval_every": "5",
        "eval_size": "100",
    }
    overrides = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    _sweep(["bench/configs/quick.toml", *overrides], tmp_path)


@pytest.mark.parametrize("strategy", ["vmap", "chunked", "sequential"])
def test_orthogonal_every_depth_finishes(strategy, tmp_path):
    # Liveness at the edge depths in every strategy. Compiled with FAST_COMPILE (the sweeps
    # take half the time), which also hid the old QR deadlock, as did these small programs
    # without it; the reported command above, compiled as usual, is the test that caught it.
    spec = {
        **TINY,
        "data": {**TINY["data"], "n_train": 64},
        "init": "orthogonal",
        "depth": [1, 60, 200],
        "width": 16,
        "batch_size": 8,
        "steps": 2,
        "eval_every": 1,
        "eval_size": 16,
        "lr": [0.1],
        "seed": [0, 1, 2, 3],  # 2 lanes a device: a batched init under vmap and chunked
        "strategy": strategy,
        "max_lanes": 2 if strategy == "chunked" else 256,
    }
    _sweep([str(write_toml(tmp_path / "sweep.toml", spec))], tmp_path, fast_compile=True)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("init", config.INITS)
def test_init_calls_no_lapack(init, model):
    # Deterministic guard behind the timeouts above: no LAPACK custom call (which may fan out
    # over the pool) in the initialisation a group program traces, for a vmapped batch of keys.
    spec = {**TINY, "init": init, "model": model, "depth": 5, "width": 16, "channels": [4, 8]}
    ((static, _),) = config.expand(config.parse(spec))
    m = models.make_model(static, (8, 8, 1) if model == "cnn" else (40,), 10)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    text = jax.jit(jax.vmap(m.init, in_axes=(0, None))).lower(keys, HP).as_text()
    assert "lapack" not in text


def _draw(shape_in: tuple[int, ...], **spec):
    ((static, _),) = config.expand(config.parse({**TINY, "init": "orthogonal", **spec}))
    m = models.make_model(static, shape_in, 10)
    keys = jax.random.split(jax.random.PRNGKey(1), 4)
    init = jax.jit(jax.vmap(m.init, in_axes=(0, None)), compiler_options=FAST_COMPILE)
    return jax.tree.map(np.asarray, init(keys, HP))


def _assert_orthonormal(w: np.ndarray, where: str) -> None:
    """Every matrix over the last two axes of ``w`` has orthonormal columns (rows if wide),
    times GAIN: W^T W (or W W^T) = GAIN^2 I, in float64."""
    w = w.reshape(-1, *w.shape[-2:]).astype(np.float64)
    if w.shape[1] < w.shape[2]:
        w = w.transpose(0, 2, 1)
    gram = w.transpose(0, 2, 1) @ w
    want = np.broadcast_to(GAIN**2 * np.eye(w.shape[2]), gram.shape)
    np.testing.assert_allclose(gram, want, atol=1e-5, err_msg=where)


def test_orthogonal_mlp_weights_are_orthogonal():
    # 40 -> 16 (tall), 16 -> 16 stacked x 4 (square), 16 -> 10 (tall); 8 -> 16 (wide) below.
    p = _draw((40,), depth=5, width=16)
    assert p["hidden"]["w"].shape == (4, 4, 16, 16)
    for name in ("first", "hidden", "head"):
        _assert_orthonormal(p[name]["w"], name)
    wide = _draw((8,), depth=2, width=16)["first"]["w"]
    assert wide.shape == (4, 8, 16)
    _assert_orthonormal(wide, "wide first layer")


def test_orthogonal_conv_kernels_are_one_matrix_each():
    # A (5, 5, c_in, c_out) kernel is one (25 c_in, c_out) matrix with orthonormal columns.
    p = _draw((8, 8, 3), model="cnn", channels=[12, 4], pool=2)
    convs = [c["w"] for c in p["convs"]]
    assert [c.shape for c in convs] == [(4, 5, 5, 3, 12), (4, 5, 5, 12, 4)]
    for i, w in enumerate(convs):
        _assert_orthonormal(w.reshape(w.shape[0], -1, w.shape[-1]), f"conv {i}")
    _assert_orthonormal(p["head"]["w"], "cnn head")


@pytest.mark.parametrize("shape", [(16, 16), (40, 8), (8, 40), (1, 12), (64, 64)])
def test_orthogonal_matches_jax_nn_initializers(shape):
    # Same key, same Gaussian draw, same positive-diagonal-R convention: the same matrices up
    # to rounding (LAPACK's Householder QR vs Gram-Schmidt), so the random stream is unchanged.
    keys = jax.random.split(jax.random.PRNGKey(2), 6)
    ref = jax.nn.initializers.orthogonal()
    draw = jax.vmap(lambda k: (models._orthogonal(k, shape), ref(k, shape, jnp.float32)))
    got, want = jax.jit(draw, compiler_options=FAST_COMPILE)(keys)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4)
