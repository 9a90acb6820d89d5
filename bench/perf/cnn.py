"""A small CNN: the harness against the same configurations trained one after another.

The harness's ``auto`` strategy against one jitted ``train`` called per configuration, and
its model-FLOP utilisation (convolution and matmul FLOPs counted from the forward pass's
jaxpr, ``bench.perf.mfu.traced_model_flops``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from bench.perf.common import interleaved, median, paired_ratio
from bench.perf.harness import harness_program, mlp_sweep
from bench.perf.mfu import traced_model_flops


def bench_cnn(
    n_configs: int,
    steps: int,
    rounds: int,
    channels=(8, 16),
    peaks: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The harness (auto) vs the same configurations one after another (one jitted ``train``
    per configuration, called in a Python loop); with ``peaks`` ({name: FLOP/s}), the
    harness's model-FLOP utilisation against each."""
    from bench import execute
    from bench.train import make_train

    setup = mlp_sweep(n_configs=n_configs, model="cnn", channels=channels, steps=steps, batch=64)
    run_auto, compile_s, resolved = harness_program(setup, "auto")
    train = jax.jit(make_train(setup.static, setup.num_classes))
    dyn = execute.dynamic_arrays(setup.configs)
    data = jax.tree.map(jnp.asarray, setup.data)  # None fields (no test split) stay None
    lanes = [{k: jnp.asarray(v[i]) for k, v in dyn.items()} for i in range(n_configs)]

    def one_after_another():
        return [train(d, jax.random.PRNGKey(d["seed"]), data) for d in lanes]

    fns = {"harness_auto": run_auto, "one_after_another": one_after_another}
    if jax.device_count() > 1:
        fns["harness_auto_1device"] = harness_program(setup, "auto", None, jax.devices()[:1])[0]
    t = interleaved(fns, rounds)
    flops = traced_model_flops(setup)
    rate = flops / median(t["harness_auto"])
    return {
        "n_configs": n_configs,
        "channels": list(channels),
        "steps": steps,
        "strategy": resolved,
        "harness_compile_s": compile_s,
        "median_s": {k: median(v) for k, v in t.items()},
        "speedup_of_harness_auto": paired_ratio(t["one_after_another"], t["harness_auto"]),
        "n_devices": jax.device_count(),
        "model_flops": flops,
        "model_flop_per_s": rate,
        "mfu": {k: rate / v for k, v in (peaks or {}).items()},
    }
