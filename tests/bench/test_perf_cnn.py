"""The CNN rows of the performance report: the FLOP count, the PyTorch twin, the pooling variants
and the targets' verdicts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from bench import layers
from bench.models import make_model
from bench.perf import cnn, mfu
from bench.perf.render import _cnn_groups, _cnn_vs_torch

SHAPES = [(28, 28, 1), (32, 32, 3), (9, 11, 2)]  # odd sizes: SAME pooling rounds up


@pytest.mark.parametrize("shape", SHAPES)
def test_step_flops_match_the_programs_own_count(shape):
    """The formula (shapes) against the convolutions and matmuls traced from the model."""
    static, _, _ = cnn.group(shape, (8, 8, 16), 1, 2)
    model = make_model(static, shape, cnn.NUM_CLASSES)
    hp = {"init_scale": jnp.float32(1), "bias_init": jnp.float32(0), "slope": jnp.nan}
    params = jax.eval_shape(lambda k: model.init(k, hp), jax.random.PRNGKey(0))
    x = jax.ShapeDtypeStruct((cnn.BATCH, *shape), jnp.float32)
    jaxpr = jax.make_jaxpr(lambda p, x: model.apply(p, x, hp))(params, x).jaxpr
    assert cnn.step_flops(shape, (8, 8, 16)) == 3 * mfu.matmul_flops(jaxpr)


@pytest.mark.parametrize("shape", SHAPES)
def test_the_pytorch_twin_has_the_harness_networks_parameters_and_shapes(shape):
    torch = pytest.importorskip("torch")
    run = cnn.torch_callable(shape, (4, 4, 8), steps=1, threads=1, channels_last=True)
    static, _, _ = cnn.group(shape, (4, 4, 8), 1, 2)
    model = make_model(static, shape, cnn.NUM_CLASSES)
    hp = {"init_scale": jnp.float32(1), "bias_init": jnp.float32(0), "slope": jnp.nan}
    params = model.init(jax.random.PRNGKey(0), hp)
    n_jax = sum(p.size for p in jax.tree.leaves(params))
    twin = cnn.torch_net(shape, (4, 4, 8), channels_last=False)
    assert sum(p.numel() for p in twin.parameters()) == n_jax
    out = twin(torch.zeros(2, shape[2], shape[0], shape[1]))
    assert tuple(out.shape) == (2, cnn.NUM_CLASSES)
    run()  # trains a step without error


@pytest.mark.parametrize("shape", [(2, 9, 3), (2, 8, 8, 3), (2, 7, 10, 1)])
def test_the_no_pool_variant_has_the_pooled_shape(shape):
    x = jnp.ones(shape)
    assert cnn._no_pool(x, 3, 2).shape == layers.max_pool(x, 3, 2).shape
    assert cnn._xla_max_pool(x, 3, 2).shape == layers.max_pool(x, 3, 2).shape


def _row(ratio, channels=(16, 16, 32), shape=(28, 28, 1)):
    ms = {"harness": 2.0, "torch:1 thread, NCHW": 2.0 / ratio}
    return {
        "shape": list(shape),
        "channels": list(channels),
        "ms_per_step": ms,
        "harness_gflop_per_s": 1.0,
        "torch_best": "1 thread, NCHW",
        "harness_over_torch": ratio,
    }


def test_vs_torch_targets_pass_at_or_below_one_and_only_for_the_named_settings():
    _, targets = _cnn_vs_torch([_row(0.9), _row(1.2, (32, 32, 64))], peak=1e9)
    assert [ok for _, ok, _ in targets] == [True, False]
    _, none = _cnn_vs_torch([_row(0.5, (8, 8, 16)), _row(0.5, shape=(32, 32, 3))], peak=1e9)
    assert none == []


def test_group_targets_use_auto_against_pytorch():
    row = {
        "shape": [28, 28, 1],
        "channels": [32, 32, 64],
        "n_configs": 8,
        "n_devices": 2,
        "auto": "sequential_sharded",
        "auto_over_fastest": 1.0,
        "fastest_harness": "sequential_sharded",
        "auto_gflop_per_s": 1.0,
        "ms_per_config_step": {"sequential_sharded": 3.0, "torch:1 thread, NCHW": 2.0},
        "torch_best": "1 thread, NCHW",
        "auto_over_torch": 1.5,
    }
    _, targets = _cnn_groups([row])
    assert len(targets) == 1 and not targets[0][1] and "8 config" in targets[0][0]
