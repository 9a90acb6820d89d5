"""Every registered activation against its jax.nn counterpart, jitted, forward and fwd+bwd.

Grouped by (activation, mode, dtype, size), so pytest-benchmark's table shows ours and jax.nn
side by side. Each body compiles ahead of time (``lower(...).compile()``), outside the timed
call, and blocks inside it. ``extra_info``:

- ``temp_bytes``: the compiled program's scratch memory (None where not reported);
- fwd_bwd: ``residual_bytes`` / ``residual_arrays``: what the forward pass keeps for the
  backward pass (``bench.perf.activations.residual_bytes``); on ``ours`` also jax.nn's figure
  and whether ours is <= it (the target);
- on ``ours`` in timed mode, ``ratio_ours_over_jax_nn``: the median of per-round time ratios
  measured interleaved with jax.nn in this test (target <= 1.05 for float32 fwd_bwd at 2^20
  and 2^24).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import pytest

import activations
from bench import perf

MODES = {"fwd": perf.fwd_program, "fwd_bwd": perf.fwd_bwd_program}


def _rounds(log2_size: int) -> int:
    return 5 if log2_size >= 24 else 15 if log2_size >= 20 else 50


@functools.cache
def _inputs(log2_size: int, dtype: str):
    return perf.activation_inputs(1 << log2_size, jnp.dtype(dtype))


@functools.cache
def _residual(name: str, impl: str, log2_size: int, dtype: str) -> tuple[int, int]:
    fn = perf.activation_pair(name)[impl != "ours"]
    r = perf.residual_bytes(fn, _inputs(log2_size, dtype)[0], cross_check=False)
    return r["residual_bytes"], r["residual_arrays"]


@pytest.mark.parametrize("impl", ["ours", "jax_nn"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", activations.names())
def test_activation(benchmark, timing, name, dtype, mode, impl, log2_size):
    benchmark.group = f"{name} {mode} {dtype} 2^{log2_size}"
    ours, ref = perf.activation_pair(name)
    x, g = _inputs(log2_size, dtype)
    args = (x, g) if mode == "fwd_bwd" else (x,)
    prog = MODES[mode](ours if impl == "ours" else ref).lower(*args).compile()
    out = perf.block(prog(*args))
    assert (out[0] if mode == "fwd_bwd" else out).dtype == x.dtype

    info = benchmark.extra_info
    info["elements"] = 1 << log2_size
    info["temp_bytes"] = perf.memory_stats(prog)["temp_size_in_bytes"]
    if mode == "fwd_bwd":
        info["residual_bytes"], info["residual_arrays"] = _residual(name, impl, log2_size, dtype)
        if impl == "ours":
            theirs = _residual(name, "jax_nn", log2_size, dtype)[0]
            info["residual_bytes_jax_nn"] = theirs
            info["residual_le_jax_nn"] = info["residual_bytes"] <= theirs
    if impl == "ours" and timing:
        other = MODES[mode](ref).lower(*args).compile()
        t = perf.interleaved(
            {"ours": lambda: prog(*args), "ref": lambda: other(*args)}, _rounds(log2_size)
        )
        ratio = perf.paired_ratio(t["ours"], t["ref"])
        info["ratio_ours_over_jax_nn"] = ratio
        info["ratio_target"] = perf.ACT_TIME_TARGET
        info["ratio_within_target"] = ratio <= perf.ACT_TIME_TARGET

    benchmark.pedantic(lambda: perf.block(prog(*args)), warmup_rounds=1, rounds=_rounds(log2_size))
