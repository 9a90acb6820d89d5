"""Training: one group = one trace; strategies agree; a diverging lane leaves others alone.

One module-scoped fixture runs a tiny group (2 learning rates x 2 seeds, plus a learning rate
that diverges) under every strategy, so the whole file compiles five small programs.

Runs are short on purpose: a vmapped matmul rounds differently from an unbatched one (1 ulp of
the loss at step 0), and SGD at a large learning rate amplifies that chaotically (measured on
quick.toml: ~1e-4 in the minibatch loss by step 10, O(1) by step 50 for lr >= 0.5). Equality
to float tolerance is a property of the first few dozen steps, not of a 1000-step run.
"""

from __future__ import annotations

import numpy as np
import pytest
from _bench_util import TINY

from bench import config, execute, train

BAD_LR = 1e6


@pytest.fixture(scope="module")
def setup():
    cfg = config.parse({**TINY, "lr": [0.3, 0.05, BAD_LR], "seed": [0, 1], "loss_bound": 1e4})
    ((static, configs),) = config.expand(cfg)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = (np.argmax(x[:, :4], 1)).astype(np.int32)
    data = execute.train_data(x, y, cfg.eval_size)
    return static, configs, data


def _run(setup, configs, **kw):
    static, _, data = setup
    return execute.run_group(static, configs, data, 4, **kw)[0]


@pytest.fixture(scope="module")
def runs(setup):
    _, configs, _ = setup
    out = {
        s: _run(setup, configs, strategy=s, max_lanes=4) for s in ("vmap", "chunked", "sequential")
    }
    good = [c for c in configs if c["lr"] != BAD_LR]
    out["good_only"] = _run(setup, good, strategy="vmap")
    out["alone"] = _run(setup, configs[:1], strategy="vmap")
    return out


def _close(a, b):
    for k in ("loss", "minibatch_error", "eval_error"):
        np.testing.assert_allclose(a[k], b[k], rtol=2e-5, atol=1e-6, equal_nan=True, err_msg=k)
    for k in ("diverged", "divergence_step"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_metric_shapes(setup, runs):
    static, configs, _ = setup
    m = runs["vmap"]
    n = len(configs)
    assert m["loss"].shape == m["minibatch_error"].shape == (n, static.steps)
    assert m["eval_error"].shape == (n, static.steps // static.eval_every + 1)
    assert m["diverged"].shape == m["divergence_step"].shape == (n,)
    # Training works: the best lane's evaluation error falls.
    assert np.nanmin(m["eval_error"][:, -1]) < m["eval_error"][0, 0]


@pytest.mark.parametrize("strategy", ["chunked", "sequential"])
def test_strategies_agree(runs, strategy):
    _close(runs[strategy], runs["vmap"])


def test_alone_equals_in_group(runs):
    alone = runs["alone"]
    group = {k: v[:1] for k, v in runs["vmap"].items()}
    _close(alone, group)


def test_diverging_lane_is_marked_and_others_unchanged(setup, runs):
    _, configs, _ = setup
    m = runs["vmap"]
    bad = np.array([c["lr"] == BAD_LR for c in configs])
    assert m["diverged"][bad].all() and not m["diverged"][~bad].any()
    step = m["divergence_step"][bad]
    assert ((step >= 0) & (step < 5)).all()
    assert (m["divergence_step"][~bad] == -1).all()
    # After divergence the lane reads NaN; before it the loss was finite.
    for j in np.flatnonzero(bad):
        s = m["divergence_step"][j]
        assert np.isnan(m["loss"][j, s:]).all() and np.isfinite(m["loss"][j, :s]).all()
    _close({k: v[~bad] for k, v in m.items()}, runs["good_only"])


def test_group_traces_once(setup, monkeypatch):
    static, configs, data = setup
    traces = []
    real = execute.make_train

    def counting(*a, **k):
        f = real(*a, **k)

        def train_fn(*args):
            traces.append(1)
            return f(*args)

        return train_fn

    monkeypatch.setattr(execute, "make_train", counting)
    program = execute.build_program(static, 4, "vmap", execute.config_mesh(), 4)
    dyn = execute.dynamic_arrays(configs)
    program.lower(dyn, data)
    program.lower(dyn, data)  # cached: no retrace
    assert len(traces) == 1


def test_eval_steps_and_auto_rule(setup):
    static, _, _ = setup
    assert list(train.eval_steps(static)) == [0, 5, 10, 15, 20]
    cnn = config.expand(config.parse({"model": "cnn"}))[0][0]
    wide = config.expand(config.parse({"width": 256}))[0][0]
    assert execute.plan("auto", cnn, 8, "cpu", 256)[0] == "sequential"
    assert execute.plan("auto", static, 8, "cpu", 256)[0] == "vmap"
    assert execute.plan("auto", wide, 8, "cpu", 256)[0] == "sequential"
    assert execute.plan("auto", cnn, 8, "gpu", 256)[0] == "vmap"
    assert execute.plan("auto", cnn, 300, "gpu", 256)[0] == "chunked"
    assert execute.plan("sequential", wide, 8, "gpu", 256)[0] == "sequential"


@pytest.mark.parametrize(
    ("width", "share", "expected"),
    [
        (32, 8, ("vmap", 8)),  # 8 x 128 x 32 floats = one 128 KiB chunk
        (32, 16, ("chunked", 8)),
        (64, 16, ("chunked", 4)),
        (64, 4, ("vmap", 4)),
        (128, 16, ("chunked", 2)),
        (256, 16, ("sequential", 1)),
    ],
)
def test_cpu_auto_chunks_fit_the_cache(width, share, expected):
    static = config.expand(config.parse({"width": width, "batch_size": 128}))[0][0]
    assert execute.plan("auto", static, share, "cpu", 256) == expected
    # max_lanes still caps a chunk; a forced strategy keeps it
    assert execute.plan("auto", static, 64, "cpu", 2)[1] <= 2
    assert execute.plan("chunked", static, 64, "cpu", 3) == ("chunked", 3)


def test_cnn_with_trained_prelu_slopes_trains():
    cfg = config.parse(
        {
            **TINY,
            "model": "cnn",
            "channels": [2, 2, 4],
            "activation": "prelu",
            "prelu_mode": "channel",
            "steps": 10,
            "lr": [0.1, 1e6],
        }
    )
    ((static, configs),) = config.expand(cfg)
    x = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    data = execute.train_data(x, (x[:, 0] > 0).astype(np.int32), 16)
    m, timing = execute.run_group(static, configs[:2], data, 4)
    assert timing["strategy"] == "sequential"  # auto on CPU: never vmap convolutions
    assert np.isfinite(m["loss"][0]).all() and not m["diverged"][0]
    assert m["loss"][0, -1] < m["loss"][0, 0]
