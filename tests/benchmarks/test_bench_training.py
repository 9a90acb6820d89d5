"""Training benchmarks: one step, N configurations by every way, compile time, matmul peak.

The N-configuration sweep (MNIST-1D, 40 -> 32 x 4 -> 10 tanh, SGD, batch 128, N = 32 learning
rates, identical minibatches and initial weights) is trained by the harness (``auto`` and each
strategy forced) and by ``bench.baselines`` (naive JAX loop, PyTorch loop, torch.func vmap);
every way's final losses must match the harness's to 1e-3, so all of them train the same thing.
The torch benchmarks skip, with the reason shown in the summary (``pytest -rs``), when torch is
not installed (``pip install torch==2.13.0`` for the CPU build).

``test_sweep_ratios`` (timed mode only) measures all ways side by side, rounds interleaved, and
puts the speed-ups of the harness and the issue's targets into ``extra_info``.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import activations
from bench import config, execute, perf
from bench import sweep as bench_sweep

N_CONFIGS = 32
WIDTH = 32
STRATEGIES = ("auto", "vmap", "chunked", "sequential")
BASELINES = ("naive_jax_loop", "torch_loop", "torch_func_vmap")
LOSS_ATOL = 1e-3


def _steps(timing: bool) -> int:
    return 100 if timing else 5


def _need_torch() -> None:
    pytest.importorskip(
        "torch", reason="PyTorch is optional: pip install torch==2.13.0 (CPU build)"
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def peak(timing):
    """fp32 matmul FLOP/s measured in this session (for the FLOP-utilisation figures)."""
    return perf.matmul_peak((1024,), rounds=3 if timing else 1)["peak"]


@pytest.fixture(scope="module")
def sweep(timing):
    return perf.mlp_sweep(n_configs=N_CONFIGS, width=WIDTH, steps=_steps(timing))


@pytest.fixture(scope="module")
def harness(sweep):
    """Compiled harness programs by strategy (compiled once, outside every timed call)."""
    cache: dict[str, tuple] = {}

    def get(strategy: str):
        lanes = execute.MAX_LANES if strategy == "auto" else max(1, N_CONFIGS // 4)
        resolved, k = perf.resolve_strategy(sweep, strategy, lanes)
        key = (resolved, k if resolved == "chunked" else 0)
        if key not in cache:  # "auto" shares the program of the strategy it resolves to
            cache[key] = perf.harness_program(sweep, resolved, k)
        return cache[key]

    return get


@pytest.fixture(scope="module")
def reference_losses(sweep, harness):
    run, _, _ = harness("auto")
    return perf.harness_final_losses(run(), N_CONFIGS)


# --------------------------------------------------------------------------- matmul peak


@pytest.mark.parametrize("n", [1024, 2048])
def test_matmul_peak(benchmark, n):
    benchmark.group = "matmul fp32"
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    f = jax.jit(lambda a, b: a @ b)
    perf.block(f(a, b))
    benchmark.extra_info["flops_per_call"] = 2 * n**3
    t0 = time.perf_counter()
    benchmark.pedantic(lambda: perf.block(f(a, b)), warmup_rounds=1, rounds=5)
    if benchmark.stats is not None:
        benchmark.extra_info["flop_per_s"] = 2 * n**3 / benchmark.stats.stats.median
    else:  # CI mode: one untimed call
        benchmark.extra_info["flop_per_s_rough"] = 2 * n**3 / (time.perf_counter() - t0)


# --------------------------------------------------------------------------- one step


def _one_step(model: str, width: int = 64, channels=(32, 32, 64)):
    """One SGD step of the harness's model (bench.models), jitted; returns (step, args, flops)."""
    from bench.models import make_model

    setup = perf.mlp_sweep(
        n_configs=1, model=model, width=width, channels=channels, steps=1, batch=128
    )
    m = make_model(setup.static, setup.x_train.shape[1:], setup.num_classes)
    hp = {"init_scale": jnp.float32(1), "bias_init": jnp.float32(0), "slope": jnp.nan}
    params = m.init(jax.random.PRNGKey(0), hp)
    opt = optax.sgd(0.05)

    def loss_fn(p, x, y):
        logits = m.apply(p, x, hp)
        return activations.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(p, s, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    idx = setup.batch_idx[0]
    args = (
        params,
        opt.init(params),
        jnp.asarray(setup.x_train[idx]),
        jnp.asarray(setup.y_train[idx]),
    )
    flops = setup.model_flops if model == "mlp" else None
    return step, args, flops


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_train_step(benchmark, model):
    benchmark.group = "train step"
    step, args, flops = _one_step(model)
    perf.block(step(*args))
    benchmark.pedantic(lambda: perf.block(step(*args)), warmup_rounds=1, rounds=10)
    benchmark.extra_info["model_flops_per_step"] = flops
    if flops and benchmark.stats is not None:
        benchmark.extra_info["model_flop_per_s"] = flops / benchmark.stats.stats.median


# --------------------------------------------------------------------------- the sweep

OUTCOME = ("target", "steps_to_target", "final_train_error", "diverged")


def _training_outcome(sweep, out) -> dict:
    """Per configuration, what a sweep's records say (``bench.sweep.make_records``): steps to
    the default target (None: not reached), final training error, diverged."""
    cfg = config.parse({"experiment": "perf"})
    group = bench_sweep.Group(0, sweep.static, sweep.configs, 0)
    metrics = {k: np.asarray(v)[:N_CONFIGS] for k, v in out.items()}
    recs = bench_sweep.make_records(cfg, group, metrics, None)
    return {"target": cfg.target, **{k: [r[k] for r in recs] for k in OUTCOME[1:]}}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_sweep_harness(benchmark, sweep, harness, reference_losses, peak, strategy):
    benchmark.group = f"mlp sweep N={N_CONFIGS} W={WIDTH}"
    run, compile_s, resolved = harness(strategy)
    out = run()
    losses = perf.harness_final_losses(out, N_CONFIGS)
    np.testing.assert_allclose(losses, reference_losses, atol=LOSS_ATOL)
    info = benchmark.extra_info
    info.update(strategy=resolved, compile_s=compile_s, model_flops=sweep.model_flops)
    # What was trained, not only how fast: set before timing, so CI mode records it too.
    info.update(_training_outcome(sweep, out))
    assert set(OUTCOME) <= info.keys()
    benchmark.pedantic(lambda: perf.block(run()), warmup_rounds=1, rounds=3)
    if benchmark.stats is not None:
        rate = sweep.model_flops / benchmark.stats.stats.median
        info.update(model_flop_per_s=rate, fraction_of_matmul_peak=rate / peak)


@pytest.mark.parametrize("way", BASELINES)
def test_sweep_baseline(benchmark, timing, sweep, reference_losses, way):
    benchmark.group = f"mlp sweep N={N_CONFIGS} W={WIDTH}"
    if way.startswith("torch"):
        _need_torch()
    fn = perf.baseline_callables(sweep)[way]
    if timing:  # an untimed first call: the naive loop's jit, torch's first-call setup
        fn()
    losses = benchmark.pedantic(fn, rounds=2)  # CI mode: called once, untimed
    np.testing.assert_allclose(losses, reference_losses, atol=LOSS_ATOL)


def test_sweep_ratios(benchmark, timing, sweep, harness):
    """All ways side by side in one measurement (interleaved rounds), ratios in extra_info."""
    if not timing:
        pytest.skip("side-by-side ratios need timing: run with --benchmark-enable")
    benchmark.group = f"mlp sweep N={N_CONFIGS} W={WIDTH}: ratios"
    fns = {f"harness_{s}": harness(s)[0] for s in STRATEGIES}
    fns.update(perf.baseline_callables(sweep))
    t = perf.interleaved(fns, rounds=3)
    info = benchmark.extra_info
    for k in t:
        info[f"speedup_vs_{k}"] = perf.paired_ratio(t[k], t["harness_auto"])
    best = min(perf.median(t[f"harness_{s}"]) for s in STRATEGIES[1:])
    info["auto_over_best_strategy"] = perf.median(t["harness_auto"]) / best
    info["targets"] = {
        "vs_torch_loop>=5": info.get("speedup_vs_torch_loop", 0) >= perf.VS_TORCH_LOOP,
        "vs_naive_jax>=2": info["speedup_vs_naive_jax_loop"] >= perf.VS_NAIVE_JAX,
        "vs_torch_func>=1.3": info.get("speedup_vs_torch_func_vmap", 0) >= perf.VS_TORCH_FUNC,
        "auto_within_5pct_of_best": info["auto_over_best_strategy"] <= perf.VS_BEST_STRATEGY,
    }
    run = fns["harness_auto"]
    benchmark.pedantic(lambda: perf.block(run()), rounds=1)


def test_mlp_flop_utilisation(benchmark, timing, peak):
    """Model FLOP/s of the harness at width 256 against this session's matmul peak."""
    benchmark.group = "mlp FLOP utilisation"
    setup = perf.mlp_sweep(n_configs=2, width=256, steps=50 if timing else 5)
    run, _, resolved = perf.harness_program(setup, "auto")
    perf.block(run())
    benchmark.extra_info.update(strategy=resolved, model_flops=setup.model_flops, peak=peak)
    benchmark.pedantic(lambda: perf.block(run()), warmup_rounds=1, rounds=3)
    if benchmark.stats is not None:
        rate = setup.model_flops / benchmark.stats.stats.median
        benchmark.extra_info.update(
            model_flop_per_s=rate, mfu=rate / peak, mfu_target_met=rate / peak >= perf.MFU_TARGET
        )


def test_matmul_only_bound(benchmark, sweep, peak):
    """The sweep's matmuls alone, run as the harness runs the sweep: the ceiling of its MFU."""
    benchmark.group = "mlp FLOP utilisation"
    run = perf.matmul_only_program(sweep)
    out = np.asarray(perf.block(run()))
    assert out.shape[0] >= len(sweep.configs) and np.all(np.isfinite(out))
    benchmark.pedantic(lambda: perf.block(run()), warmup_rounds=1, rounds=3)
    if benchmark.stats is not None:
        rate = sweep.model_flops / benchmark.stats.stats.median
        benchmark.extra_info.update(
            matmul_only_flop_per_s=rate, fraction_of_matmul_peak=rate / peak
        )


# --------------------------------------------------------------------------- compile time

_COMPILE_S: dict[int, float] = {}


@pytest.mark.parametrize("depth", [4, 50, 200])
def test_compile_time(benchmark, timing, depth):
    """Trace + lower + compile of the harness program; extra_info ratio depth 200 / depth 4."""
    if depth == 50 and not timing:
        pytest.skip("CI mode compiles depths 4 and 200 only (--benchmark-enable for 50)")
    benchmark.group = "compile time mlp"
    setup = perf.mlp_sweep(n_configs=4, width=64, depth=depth, steps=10)
    times: list[float] = []

    def compile_once():
        times.append(perf.harness_program(setup, "vmap")[1])

    benchmark.pedantic(compile_once, rounds=2)
    _COMPILE_S[depth] = perf.median(times)
    benchmark.extra_info["compile_s"] = _COMPILE_S[depth]
    if depth == 200 and 4 in _COMPILE_S:
        ratio = _COMPILE_S[200] / _COMPILE_S[4]
        benchmark.extra_info["ratio_depth200_over_depth4"] = ratio
        benchmark.extra_info["target_met"] = ratio <= perf.COMPILE_TARGET


# --------------------------------------------------------------------------- CNN


def test_cnn_sweep(benchmark, timing):
    """Harness (auto) vs the same CNN configurations one after another; ratio in extra_info."""
    benchmark.group = "cnn sweep"
    n, steps = (4, 20) if timing else (2, 2)
    if timing:
        res = perf.bench_cnn(n, steps, rounds=3, channels=(8, 16))
        benchmark.extra_info.update(res)
    setup = perf.mlp_sweep(n_configs=n, model="cnn", channels=(8, 16), steps=steps, batch=64)
    run, compile_s, resolved = perf.harness_program(setup, "auto")
    benchmark.extra_info.update(strategy=resolved, compile_s=compile_s)
    benchmark.pedantic(lambda: perf.block(run()), warmup_rounds=1, rounds=3)
