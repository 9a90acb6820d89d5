"""CNN topologies: pool types per layer, cuda-convnet's 18pct net, and tiny sweeps with it.

The 18pct net (cuda-convnet example-layers/layers-18pct.cfg, without its response
normalisation): conv 5x5 (32) -> max-pool 3/2 -> conv 5x5 (32) -> avg-pool 3/2 -> conv 5x5
(64) -> avg-pool 3/2 -> fc 10, ReLU after every conv. The model is checked against the same
network written here with plain ``lax`` ops.
"""

from __future__ import annotations

import functools
import gzip
import json
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _bench_util import TINY
from jax import lax

from bench import config, models, results, sweep

# Tiny programs compiled once: skip LLVM's expensive passes (as tests/_utils.FAST_COMPILE).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
HP = {"init_scale": jnp.float32(1.0), "bias_init": jnp.float32(0.1), "slope": jnp.float32(0.0)}
CNN_18PCT = {"model": "cnn", "architecture": "cifar_18pct", "activation": "relu"}


def _static(**kw):
    ((s, _),) = config.expand(config.parse({**TINY, **kw}))
    return s


def _reference_18pct(params, x):
    """The 18pct forward pass from lax ops: SAME 5x5 convs, ReLU, pools 3/2 SAME; an average
    divides by the window's positions inside the image (cuda-convnet's regionSize)."""
    h = x
    for p, kind in zip(params["convs"], ("max", "avg", "avg"), strict=True):
        h = lax.conv_general_dilated(
            h, p["w"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        h = jax.nn.relu(h + p["b"])
        win, strides = (1, 3, 3, 1), (1, 2, 2, 1)
        if kind == "max":
            h = lax.reduce_window(h, -jnp.inf, lax.max, win, strides, "SAME")
        else:
            total = lax.reduce_window(h, 0.0, lax.add, win, strides, "SAME")
            inside = lax.reduce_window(jnp.ones_like(h), 0.0, lax.add, win, strides, "SAME")
            h = total / inside
    h = h.reshape(h.shape[0], -1)
    return h @ params["head"]["w"] + params["head"]["b"]


def test_cifar_18pct_layers_shapes_and_pools():
    s = _static(**CNN_18PCT)
    assert s.pool_type == ("max", "avg", "avg") and s.pool == 3 and s.channels == (32, 32, 64)
    m = models.make_model(s, (32, 32, 3), 10)
    p = jax.eval_shape(m.init, jax.random.PRNGKey(0), HP)
    assert [c["w"].shape for c in p["convs"]] == [(5, 5, 3, 32), (5, 5, 32, 32), (5, 5, 32, 64)]
    assert p["head"]["w"].shape == (4 * 4 * 64, 10)  # 32 -> 16 -> 8 -> 4: 4 weight layers
    _, trace = jax.eval_shape(m.trace, p, jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32), HP)
    assert [t["pre"].shape for t in trace] == [(2, 32, 32, 32), (2, 16, 16, 32), (2, 8, 8, 64)]
    # The pools, checked by value at fewer channels (channels stay configurable).
    small = _static(**{**CNN_18PCT, "channels": [4, 4, 8]})
    assert small.channels == (4, 4, 8)
    m = models.make_model(small, (32, 32, 3), 10)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 32, 32, 3))

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def both(key, x):
        p = m.init(key, HP)
        return m.apply(p, x, HP), _reference_18pct(p, x)

    ours, ref = both(jax.random.PRNGKey(0), x)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_pool_type_per_layer():
    s = _static(model="cnn", activation="relu", channels=[4, 6], pool_type=["avg", "max"], pool=2)
    assert s.pool_type == ("avg", "max")
    m = models.make_model(s, (12, 12, 1), 3)

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def both(key, x):
        p = m.init(key, HP)
        pre = lax.conv_general_dilated(
            x, p["convs"][0]["w"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        h = jax.nn.relu(pre + p["convs"][0]["b"])
        # 2/2 windows on an even size: no padding, each a mean of 4
        h = lax.reduce_window(h, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "SAME") / 4
        return m.trace(p, x, HP)[1][1]["input"], h

    ours, ref = both(
        jax.random.PRNGKey(0), jax.random.normal(jax.random.PRNGKey(1), (2, 12, 12, 1))
    )
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


# A CNN run's resolved config and the run id the harness gave it before pool_type and the
# protocol keys existed (results/reproductions/relu-vs-tanh at commit 3ca1e6f).
OLD_CNN_RUN = (
    "relu_vs_tanh-110e7e9c7f",
    {
        "activation": ["relu", "tanh"],
        "batch_size": [64],
        "bias_init": [0.0],
        "channels": [[16, 16, 16]],
        "data": {},
        "data_dir": None,
        "dataset": ["mnist1d"],
        "depth": [4],
        "description": "Krizhevsky et al. 2012 Fig. 1: relu vs tanh CNN, momentum SGD",
        "diag_every": 20,
        "diag_size": 512,
        "diagnostics": False,
        "eval_every": 20,
        "eval_size": 500,
        "experiment": "relu_vs_tanh",
        "init": ["lecun_normal"],
        "init_scale": [1.0],
        "init_std": 0.01,
        "loss_bound": 10000.0,
        "lr": [0.4, 0.2, 0.1, 0.05, 0.025, 0.0125],
        "max_lanes": 256,
        "model": ["cnn"],
        "momentum": 0.9,
        "optimizer": ["momentum"],
        "pool": 3,
        "prelu_mode": "layer",
        "seed": [0, 1, 2, 3, 4],
        "slope": [None],
        "steps": [600],
        "strategy": "auto",
        "target": 0.25,
        "width": [64],
    },
)


def test_default_pooling_keeps_the_run_id():
    """Runs made before pool_type existed keep their id (run directories are named by it);
    a different pooling gets a new one."""
    name, old = OLD_CNN_RUN
    assert config.parse(old).run_id() == name
    base = config.parse({**TINY, "model": "cnn"}).run_id()
    assert config.parse({**TINY, "model": "cnn", "pool_type": "max"}).run_id() == base
    same = {"pool_type": ["max", "max", "max"], "architecture": "alexnet"}
    assert config.parse({**TINY, "model": "cnn", **same}).run_id() == base
    assert config.parse({**TINY, "model": "cnn", "pool_type": "avg"}).run_id() != base
    assert config.parse({**TINY, **CNN_18PCT}).run_id() != base


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"pool_type": "min"}, "pool_type"),
        ({"pool_type": []}, "pool_type"),
        ({"pool_type": ["max", "avg"]}, "pool_type"),  # 2 pool types, 3 conv layers
        ({"architecture": "vgg"}, "architecture"),
        ({**CNN_18PCT, "pool_type": "max"}, "pool_type"),
        ({**CNN_18PCT, "pool": 2}, "pool"),
        ({**CNN_18PCT, "channels": [8, 8, 8, 8]}, "channels"),
    ],
)
def test_bad_pooling_raises_naming_the_key(raw, key):
    with pytest.raises(ValueError, match=rf"^{key}: "):
        config.parse({**TINY, "model": "cnn", **raw})


def _idx(a: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def _write_fashion(root, n_train=48, n_test=8):
    rng = np.random.default_rng(0)
    for stem, a in {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }.items():
        (root / f"{stem}.gz").write_bytes(gzip.compress(_idx(a)))


def _write_cifar_bin(root, n_per_batch=8):
    """The binary layout: per image 1 label byte, then 3072 bytes (R, G, B planes of 32x32)."""
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = rng.integers(0, 256, (n_per_batch, 3073), dtype=np.uint8)
        rows[:, 0] = rng.integers(0, 10, n_per_batch)
        (root / f"{name}.bin").write_bytes(rows.tobytes())


@pytest.mark.parametrize("dataset", ["fashion-mnist", "cifar10"])
def test_tiny_sweep_with_the_18pct_net(tmp_path, dataset):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (_write_fashion if dataset == "fashion-mnist" else _write_cifar_bin)(data_dir)
    cfg = config.parse(
        {
            **TINY,
            **CNN_18PCT,
            "dataset": dataset,
            "data_dir": str(data_dir),
            "data": {},
            "channels": [2, 2, 4],
            "batch_size": 8,
            "steps": 4,
            "eval_every": 2,
            "eval_size": 16,
            "lr": 0.01,
            "seed": 0,
        }
    )
    run_dir = sweep.run_sweep(cfg, tmp_path / "out", progress=False, report=False)
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["architecture"] == "cifar_18pct"
    assert stored["pool_type"] == ["max", "avg", "avg"]
    (rec,) = results.read_records(run_dir)
    assert rec["status"] == "done" and not rec["diverged"]
    assert np.isfinite(rec["final_minibatch_loss"]) and 0 <= rec["final_train_error"] <= 1
