"""Model-FLOP utilisation: the harness's model FLOP/s against the measured matmul peak.

Model FLOPs count the matmuls only: a dense layer ``in -> out`` costs ``2 in out`` FLOPs per
example forward and ``2x`` that backward (input and weight gradients), so one SGD step costs
``6 * P * batch`` with ``P = sum(in * out)`` over the layers (biases, activations, the loss and
the optimizer are not counted). MFU = model FLOPs / run time / measured matmul peak. A CNN's
FLOPs are counted from its forward pass's jaxpr (convolutions and matmuls, x3). ``bench_mfu``
measures the harness at width >= 256; ``bench_mfu_bound`` runs a small sweep's matmuls alone,
which bounds what its MFU can reach.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from bench.perf.common import interleaved, median
from bench.perf.harness import SweepSetup, harness_program, mlp_sweep, resolve_strategy

MFU_TARGET = 0.5


def matmul_only_program(setup: SweepSetup) -> Callable[[], Any]:
    """The sweep's matmuls and nothing else, run like the harness runs the sweep.

    Per step and configuration, every dense layer's three products at the training shapes
    (forward ``h @ w``, input gradient ``g @ w.T``, weight gradient ``h.T @ g``: the model
    FLOPs exactly), on a linear network with a fixed cotangent and a tiny weight update so the
    products cannot be hoisted out of the loop; the configurations sharded over all devices and
    run with the strategy ``auto`` picks for the sweep, the steps in one ``lax.scan``. Its FLOP
    rate is the ceiling a training step of these shapes can reach on this machine; its share
    of the harness's time says how much of the step is matmul work at all.
    """
    from bench import execute

    n, batch, steps = len(setup.configs), setup.static.batch_size, setup.static.steps
    mesh = execute.config_mesh()
    pad = -n % mesh.size
    ws = [np.concatenate([w, w[:pad]]) if pad else w for w, _ in setup.layers]
    sizes = [w.shape[1] for w in ws] + [ws[-1].shape[2]]
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (batch, sizes[0]), jnp.float32)
    g_out = jax.random.normal(key, (batch, sizes[-1]), jnp.float32) / batch

    def lane(ws):
        def step(ws, _):
            hs = [x]
            for w in ws:
                hs.append(hs[-1] @ w)
            g, new = g_out, []
            for h, w in zip(reversed(hs[:-1]), reversed(ws), strict=True):
                # contractions as autodiff emits them: no transposed copies
                new.append(w - 1e-6 * jnp.einsum("bi,bo->io", h, g))
                g = jnp.einsum("bo,io->bi", g, w)
            return new[::-1], jnp.sum(g)

        return jax.lax.scan(step, ws, None, length=steps)[1][-1]

    strategy, lanes = resolve_strategy(setup, "auto", execute.MAX_LANES, mesh.size)

    block = execute.device_block(lane, strategy, lanes)
    program = jax.jit(jax.shard_map(block, mesh=mesh, in_specs=P("config"), out_specs=P("config")))
    args = [jnp.asarray(w) for w in ws]
    compiled = program.lower(args).compile()
    return lambda: compiled(args)


def bench_mfu_bound(setup: SweepSetup, harness_s: float, rounds: int, peak: float) -> dict:
    """What bounds a small sweep's MFU: the matmul-only program's rate (vs the peak) and the
    share of the harness's time that it accounts for."""
    t = median(interleaved({"matmuls": matmul_only_program(setup)}, rounds)["matmuls"])
    return {
        "matmul_only_s": t,
        "matmul_only_flop_per_s": setup.model_flops / t,
        "matmul_only_of_peak": setup.model_flops / t / peak,
        "matmul_share_of_harness": t / harness_s,
    }


def bench_mfu(
    width: int,
    n_configs: int,
    steps: int,
    rounds: int,
    peak: float,
    peaks: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Model FLOP/s of the harness (auto) on a width-``width`` MLP, vs the matmul peak (and,
    in ``mfu_vs``, vs each of ``peaks``: {name: FLOP/s})."""
    setup = mlp_sweep(n_configs=n_configs, width=width, steps=steps)
    run, compile_s, resolved = harness_program(setup, "auto")
    t = interleaved({"run": run}, rounds)["run"]
    rate = setup.model_flops / median(t)
    return {
        "width": width,
        "n_configs": n_configs,
        "steps": steps,
        "strategy": resolved,
        "median_s": median(t),
        "compile_s": compile_s,
        "model_flop_per_s": rate,
        "mfu": rate / peak,
        "mfu_vs": {k: rate / v for k, v in (peaks or {}).items()},
    }


def matmul_flops(jaxpr: Any) -> float:
    """FLOPs of the dot_general and conv_general_dilated equations of a jaxpr (2 per
    multiply-add), nested jaxprs included (a scan's body times its length): the model FLOPs
    of a forward pass, counted from the program itself rather than a formula per model."""
    total = 0.0
    for eqn in jaxpr.eqns:
        out = math.prod(eqn.outvars[0].aval.shape) if eqn.outvars else 0
        if eqn.primitive.name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            total += 2.0 * out * math.prod(eqn.invars[0].aval.shape[d] for d in contract)
        elif eqn.primitive.name == "conv_general_dilated":
            rhs, spec = eqn.invars[1].aval.shape, eqn.params["dimension_numbers"].rhs_spec
            # rhs_spec = (out features, in features per group, spatial...)
            total += 2.0 * out * math.prod(rhs[d] for d in spec[1:])
        times = eqn.params.get("length", 1) if eqn.primitive.name == "scan" else 1
        for v in eqn.params.values():
            for sub in v if isinstance(v, tuple | list) else (v,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    total += times * matmul_flops(inner)
    return total


def traced_model_flops(setup: SweepSetup) -> float:
    """Model FLOPs of a sweep (any model; perf uses it for the CNN): 3 x the forward pass's
    matmul and convolution FLOPs per step (forward, input and weight gradients, as the MLP's
    6 P batch), x steps x N."""
    from bench.models import make_model

    static = setup.static
    m = make_model(static, setup.x_train.shape[1:], setup.num_classes)
    hp = {"init_scale": jnp.float32(1), "bias_init": jnp.float32(0), "slope": jnp.nan}
    # shapes only: nothing is initialised or run
    params = jax.eval_shape(lambda k: m.init(k, hp), jax.random.PRNGKey(0))
    x = jax.ShapeDtypeStruct((static.batch_size, *setup.x_train.shape[1:]), jnp.float32)
    fwd = matmul_flops(jax.make_jaxpr(lambda p, x: m.apply(p, x, hp))(params, x).jaxpr)
    return 3.0 * fwd * static.steps * len(setup.configs)
