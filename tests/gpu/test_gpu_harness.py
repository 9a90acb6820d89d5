"""The harness on the accelerator: ``auto``'s choice, max_lanes chunking, the device mesh.

Each group is a small MLP on synthetic data, trained for 20 steps. Matmuls run at "highest"
precision here, so that the ways of batching the same configurations (one vmapped program,
chunks of it, one lane per device) differ only by float32 round-off, not by TF32 rounding.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest
from _gpu import require_gpu, two_devices

from bench import config, data, execute

pytestmark = pytest.mark.gpu

SPEC = {
    "experiment": "gpu-check",
    "dataset": "teacher-student",
    "data": {"n_train": 256, "n_test": 32, "input_dim": 8, "num_classes": 4},
    "model": "mlp",
    "activation": "tanh",
    "depth": 2,
    "width": 16,
    "batch_size": 16,
    "steps": 20,
    "eval_every": 5,
    "eval_size": 64,
    "target": 0.5,
}
FLOAT_METRICS = ("loss",)
# eval_error counts misclassified examples: round-off may move one across the boundary
EVAL_ATOL = 1.5 / SPEC["eval_size"]


N = 5  # lanes of every group here: 3 chunks of 2, and one lane of padding on 2 devices


@functools.cache
def group():
    """(static, configs, TrainData, num_classes): N lrs x seed 0."""
    lrs = [float(v) for v in np.geomspace(0.03, 0.3, N)]
    ((static, configs),) = config.expand(config.parse({**SPEC, "lr": lrs, "seed": 0}))
    ds = data.load("teacher-student", **SPEC["data"])
    return static, configs, execute.train_data(ds.x_train, ds.y_train, SPEC["eval_size"]), 4


@functools.cache
def run(strategy: str, max_lanes: int, devices: tuple[jax.Device, ...]):
    """``execute.run_group`` of the group on a mesh of ``devices``: (metrics, timing, the
    sharding of the program's output before the padding is dropped)."""
    static, configs, td, k = group()
    seen = []
    block = jax.block_until_ready

    def spy(x):  # run_group blocks on the program's raw output: note its sharding
        seen.append(jax.tree.leaves(x)[0].sharding)
        return block(x)

    mesh = execute.config_mesh(devices)
    try:
        jax.block_until_ready = spy
        with jax.default_matmul_precision("highest"):
            metrics, timing = execute.run_group(
                static, configs, td, k, strategy=strategy, max_lanes=max_lanes, mesh=mesh
            )
    finally:
        jax.block_until_ready = block
    return metrics, timing, seen[-1]


def one_device() -> tuple[jax.Device, ...]:
    return (jax.devices()[0],)


def assert_same_metrics(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert all(v.shape[0] == N for v in a.values())
    for k in FLOAT_METRICS:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(a["eval_error"], b["eval_error"], rtol=0, atol=EVAL_ATOL)
    np.testing.assert_array_equal(a["diverged"], b["diverged"])


def test_the_default_backend_is_the_gpu():
    require_gpu("this check measures the GPU")
    assert {d.platform for d in jax.devices()} == {"gpu"}


@pytest.mark.parametrize(("max_lanes", "want"), [(8, "vmap"), (2, "chunked")])
def test_auto_picks_vmap_or_chunks_by_max_lanes_on_the_gpu(max_lanes, want):
    require_gpu("auto follows the CPU rule on a CPU (tests/bench covers it)")
    assert execute.plan("auto", group()[0], N, "gpu", max_lanes) == (want, max_lanes)
    assert run("auto", max_lanes, one_device())[1]["strategy"] == want


def test_more_lanes_than_max_lanes_equal_one_vmap():
    # N = 5 lanes in chunks of 2 (2 + 2 + 1); on a GPU ``auto`` chooses the chunks itself
    strategy = "auto" if jax.default_backend() == "gpu" else "chunked"
    chunked, t, _ = run(strategy, 2, one_device())
    assert t["strategy"] == "chunked"
    whole, t, _ = run("vmap", 8, one_device())
    assert t["strategy"] == "vmap"
    assert_same_metrics(chunked, whole)


def test_configs_sharded_over_the_devices_with_padding_equal_one_device():
    # 5 configurations on 2 devices: padded to 6 (the last repeated), the padding dropped
    devices = tuple(two_devices())
    two, _, sharding = run("vmap", 8, devices)
    assert sharding.device_set == set(devices)
    assert sharding.spec[0] == "config"  # the configuration axis is split, not replicated
    one, _, _ = run("vmap", 8, (devices[0],))
    assert_same_metrics(two, one)
