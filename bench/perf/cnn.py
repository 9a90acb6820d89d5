"""CNNs on the CPU: the harness against PyTorch, what the pooling costs, and how a group of N
CNN configurations should run; plus the small MNIST-1D CNN against one configuration after
another (``bench_cnn``).

The network of the PyTorch comparison: 3 x (conv 5x5 SAME -> ReLU -> max-pool 3/2 SAME) ->
linear 10, SGD with momentum 0.9, batch 128, on random images of a data set's shape (the time
does not depend on the pixel values). A harness time is its whole compiled group program (the
minibatch gathers, the loop, one evaluation of 128 examples) divided by steps x configurations:
the step as a sweep runs it. Contenders of one row are timed interleaved in one process.
Variants of the harness swap the max-pool while the program is traced: XLA's own
``reduce_window`` (autodiff's ``select_and_scatter`` backward) and a strided slice with
pooling's output shape (the step without pooling's cost, for the pooling share).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from bench.perf.common import interleaved, median, paired_ratio
from bench.perf.harness import compile_group, harness_program, mlp_sweep
from bench.perf.mfu import traced_model_flops

VS_TORCH_CNN = 1.0  # harness step / fastest PyTorch form, per configuration
# the channel sets the target applies to (28x28x1 inputs, 1 and N configurations)
VS_TORCH_CNN_CHANNELS = ((16, 16, 32), (32, 32, 64))
N_TRAIN = 2048  # random training images per group (the minibatches index into them)
BATCH = 128
NUM_CLASSES = 10
KERNEL = 5


def step_flops(shape: Sequence[int], channels: Sequence[int], batch: int = BATCH) -> float:
    """Model FLOPs of one training step: 3 x the forward pass's multiply-adds x 2 (forward,
    input and weight gradients), counted from the shapes (SAME convolutions, pooling stride 2)."""
    *spatial, c = shape
    fwd = 0.0
    for c_out in channels:
        fwd += 2.0 * math.prod(spatial) * KERNEL ** len(spatial) * c * c_out
        spatial, c = [-(-s // 2) for s in spatial], c_out
    fwd += 2.0 * math.prod(spatial) * c * NUM_CLASSES
    return 3.0 * fwd * batch


def group(
    shape: Sequence[int],
    channels: Sequence[int],
    n_configs: int,
    steps: int,
    pool_type: str = "max",
) -> tuple[Any, list[dict[str, Any]], Any]:
    """(GroupStatic, configurations, TrainData) of N CNNs on random images of ``shape``."""
    from bench import config, execute

    raw: dict[str, Any] = {
        "experiment": "perf",
        "dataset": "mnist1d",  # only names the group; the images below are what it trains on
        "model": "cnn",
        "activation": "relu",
        "channels": list(channels),
        "optimizer": "momentum",
        "batch_size": BATCH,
        "steps": steps,
        "lr": [float(v) for v in np.geomspace(0.001, 0.01, n_configs)],
        "seed": 0,
        "eval_every": steps,
        "eval_size": BATCH,
        "pool_type": pool_type,
    }
    ((static, configs),) = config.expand(config.parse(raw))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N_TRAIN, *shape), dtype=np.float32)
    y = rng.integers(0, NUM_CLASSES, N_TRAIN).astype(np.int32)
    return static, configs, execute.train_data(x, y, BATCH)


def _xla_max_pool(x: jax.Array, window: int, stride: int) -> jax.Array:
    nd = x.ndim - 2
    dims, strides = (1, *(window,) * nd, 1), (1, *(stride,) * nd, 1)
    return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, "SAME")


def _no_pool(x: jax.Array, window: int, stride: int) -> jax.Array:
    """A strided slice of SAME pooling's output shape: the step without pooling's cost."""
    return x[:, ::stride, ::stride, :] if x.ndim == 4 else x[:, ::stride, :]


POOLS: dict[str, Callable[..., jax.Array] | None] = {
    "harness": None,  # bench.layers.max_pool
    "xla": _xla_max_pool,  # lax.reduce_window, autodiff's select_and_scatter backward
    "none": _no_pool,
}


@contextlib.contextmanager
def _pool(kind: str) -> Iterator[None]:
    from bench import models

    impl = POOLS[kind]
    if impl is None:
        yield
        return
    with mock.patch.dict(models._POOLS, {"max": impl}):
        yield


def harness_callable(
    static: Any,
    configs: list[dict[str, Any]],
    td: Any,
    strategy: str,
    devices: Sequence[jax.Device] | None = None,
    pool: str = "harness",
    lanes: int | None = None,
) -> tuple[Callable[[], Any], str]:
    """The compiled group program as the harness builds it (``pool`` swaps the max-pool while
    tracing), and the resolved strategy."""
    from bench import execute

    with _pool(pool):
        run, _, resolved = compile_group(
            static, configs, td, NUM_CLASSES, strategy, lanes or execute.MAX_LANES, devices
        )
    return run, resolved


def jitted_step_loop(static: Any, td: Any, steps: int) -> Callable[[], Any]:
    """The same network and optimiser as one jitted step called from a Python loop (the form
    that does not run inside an XLA loop), for the in-loop vs per-call comparison."""
    import optax

    import activations
    from bench.models import make_model

    x_train, y_train = jnp.asarray(td.x_train), jnp.asarray(td.y_train)
    model = make_model(static, x_train.shape[1:], NUM_CLASSES)
    hp = {"init_scale": jnp.float32(1), "bias_init": jnp.float32(0), "slope": jnp.nan}
    params = model.init(jax.random.PRNGKey(0), hp)
    opt = optax.sgd(0.001, momentum=0.9)
    state = opt.init(params)
    idx = jax.random.randint(jax.random.PRNGKey(1), (steps, BATCH), 0, x_train.shape[0])

    @jax.jit
    def step(params, state, i):
        def loss(p):
            logits = model.apply(p, x_train[i], hp)
            return jnp.mean(
                activations.softmax_cross_entropy_with_integer_labels(logits, y_train[i])
            )

        g = jax.grad(loss)(params)
        up, state = opt.update(g, state, params)
        return optax.apply_updates(params, up), state

    def run() -> Any:
        p, s = params, state
        for t in range(steps):
            p, s = step(p, s, idx[t])
        return p

    return run


# --------------------------------------------------------------------------- PyTorch


TORCH_FORMS = (  # (threads: None = PyTorch's default, channels_last)
    (None, False),
    (None, True),
    (1, False),
    (1, True),
)


def torch_form_name(threads: int | None, channels_last: bool) -> str:
    t = "default threads" if threads is None else f"{threads} thread"
    return f"{t}, {'channels_last' if channels_last else 'NCHW'}"


def torch_net(shape: Sequence[int], channels: Sequence[int], channels_last: bool) -> Any:
    """The harness's CNN in PyTorch: same layers, parameters and shapes. PyTorch pads the
    pooling on both sides (``padding=1``) where SAME pads the high end, so windows sit one
    pixel apart: the same work, not the same function."""
    import torch
    from torch import nn

    h, w, c = shape
    layers: list[nn.Module] = []
    c_in, size = c, [h, w]
    for c_out in channels:
        layers += [
            nn.Conv2d(c_in, c_out, KERNEL, padding=KERNEL // 2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, padding=1),  # output ceil(s / 2), as SAME pooling's
        ]
        c_in, size = c_out, [(s - 1) // 2 + 1 for s in size]
    layers += [nn.Flatten(), nn.Linear(c_in * size[0] * size[1], NUM_CLASSES)]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    # torch's stubs lack Module.to's memory_format keyword
    return nn.Sequential(*layers).to(memory_format=fmt)  # type: ignore[call-overload]


def torch_callable(
    shape: Sequence[int],
    channels: Sequence[int],
    steps: int,
    threads: int | None,
    channels_last: bool,
    n_configs: int = 1,
) -> Callable[[], Any]:
    """``steps`` SGD-momentum steps of the same CNN in PyTorch (eager, CPU) for each of
    ``n_configs`` networks one after another, minibatches gathered from a training tensor."""
    import torch
    from torch import nn

    h, w, c = shape
    default_threads = torch.get_num_threads()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    g = torch.Generator().manual_seed(0)
    x_train = torch.randn(N_TRAIN, c, h, w, generator=g).contiguous(memory_format=fmt)
    y_train = torch.randint(0, NUM_CLASSES, (N_TRAIN,), generator=g)
    idx = torch.randint(0, N_TRAIN, (steps, BATCH), generator=g)

    nets = [torch_net(shape, channels, channels_last) for _ in range(n_configs)]
    opts = [torch.optim.SGD(m.parameters(), lr=0.001, momentum=0.9) for m in nets]
    loss_fn = nn.CrossEntropyLoss()

    def run() -> None:
        torch.set_num_threads(default_threads if threads is None else threads)
        try:
            for m, opt in zip(nets, opts, strict=True):
                for t in range(steps):
                    i = idx[t]
                    opt.zero_grad(set_to_none=True)
                    loss_fn(m(x_train[i]), y_train[i]).backward()
                    opt.step()
        finally:
            torch.set_num_threads(default_threads)

    return run


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- measurements


def bench_cnn_vs_torch(
    shapes: Sequence[Sequence[int]],
    channel_sets: Sequence[Sequence[int]],
    steps: int,
    rounds: int,
    pool_variants: bool = True,
) -> list[dict[str, Any]]:
    """One configuration: per (shape, channels), the harness's step (as a sweep runs it, on one
    device), the harness with XLA's own max-pool and with no pooling, the same step jitted and
    called from Python, and PyTorch in each of ``TORCH_FORMS``; milliseconds per step."""
    rows = []
    dev = jax.devices()[:1]
    for shape in shapes:
        for ch in channel_sets:
            static, configs, td = group(shape, ch, 1, steps)
            fns: dict[str, Callable[[], Any]] = {}
            fns["harness"], strategy = harness_callable(static, configs, td, "auto", dev)
            if pool_variants:
                fns["harness_xla_pool"], _ = harness_callable(
                    static, configs, td, "auto", dev, "xla"
                )
                fns["harness_no_pool"], _ = harness_callable(
                    static, configs, td, "auto", dev, "none"
                )
                fns["jitted_step_loop"] = jitted_step_loop(static, td, steps)
            if _torch_available():
                for threads, cl in TORCH_FORMS:
                    fns[f"torch:{torch_form_name(threads, cl)}"] = torch_callable(
                        shape, ch, steps, threads, cl
                    )
            t = interleaved(fns, rounds)
            ms = {k: 1e3 * median(v) / steps for k, v in t.items()}
            torch_keys = [k for k in t if k.startswith("torch:")]
            row: dict[str, Any] = {
                "shape": list(shape),
                "channels": list(ch),
                "steps": steps,
                "rounds": rounds,
                "strategy": strategy,
                "ms_per_step": ms,
                "step_flops": step_flops(shape, ch),
                "harness_gflop_per_s": step_flops(shape, ch) / ms["harness"] / 1e6,
            }
            if pool_variants:
                row["pool_share"] = 1.0 - paired_ratio(t["harness_no_pool"], t["harness"])
                row["xla_pool_over_harness"] = paired_ratio(t["harness_xla_pool"], t["harness"])
                row["in_loop_over_jitted"] = paired_ratio(t["harness"], t["jitted_step_loop"])
            if torch_keys:
                best = min(torch_keys, key=lambda k: ms[k])
                row["torch_best"] = best.removeprefix("torch:")
                row["harness_over_torch"] = paired_ratio(t["harness"], t[best])
            rows.append(row)
    return rows


def bench_cnn_group(
    shape: Sequence[int],
    channel_sets: Sequence[Sequence[int]],
    n_configs: int,
    steps: int,
    rounds: int,
) -> list[dict[str, Any]]:
    """N configurations, each way a CPU can run them: one after another on each per-core
    device (sharded), one after another on one device, vmapped pairs on each device; which
    of them ``auto`` picks; and PyTorch training the N one after another in each of its forms.
    Milliseconds per configuration-step. A contender that is the same program as another
    (``auto``'s pick, or sharded on a one-device CPU) is timed once."""
    from bench import execute

    n_dev = jax.device_count()
    # name -> (strategy, devices, lanes per chunk)
    ways = {
        "sequential_sharded": ("sequential", n_dev, 1),
        "sequential_1_device": ("sequential", 1, 1),
        "vmap_pairs_sharded": ("chunked", n_dev, 2),
    }
    rows = []
    for ch in channel_sets:
        static, configs, td = group(shape, ch, n_configs, steps)
        per_dev = -(-n_configs // n_dev)
        strategy, lanes = execute.plan("auto", static, per_dev, "cpu", execute.MAX_LANES)
        lanes = 1 if strategy == "sequential" else lanes
        plans = dict(ways)
        auto = next((k for k, v in plans.items() if v == (strategy, n_dev, lanes)), "auto")
        plans.setdefault(auto, (strategy, n_dev, lanes))
        fns: dict[str, Callable[[], Any]] = {}
        seen: dict[tuple, str] = {}
        for name, (strat, devs, ln) in plans.items():
            if (strat, devs, ln) in seen:
                continue
            seen[(strat, devs, ln)] = name
            fns[name], _ = harness_callable(
                static, configs, td, strat, jax.devices()[:devs], lanes=ln
            )
        if _torch_available():
            for threads, cl in TORCH_FORMS:
                fns[f"torch:{torch_form_name(threads, cl)}"] = torch_callable(
                    shape, ch, steps, threads, cl, n_configs
                )
        t = interleaved(fns, rounds)
        per = 1e3 / (steps * n_configs)
        ms = {k: per * median(v) for k, v in t.items()}
        torch_keys = [k for k in t if k.startswith("torch:")]
        harness_keys = [k for k in t if not k.startswith("torch:")]
        fastest = min(harness_keys, key=lambda k: ms[k])
        row: dict[str, Any] = {
            "shape": list(shape),
            "channels": list(ch),
            "n_configs": n_configs,
            "n_devices": n_dev,
            "steps": steps,
            "rounds": rounds,
            "auto": auto,
            "auto_strategy": strategy,
            "ms_per_config_step": ms,
            "fastest_harness": fastest,
            "auto_over_fastest": paired_ratio(t[auto], t[fastest]),
            "step_flops": step_flops(shape, ch),
            "auto_gflop_per_s": step_flops(shape, ch) / ms[auto] / 1e6,
        }
        if torch_keys:
            best = min(torch_keys, key=lambda k: ms[k])
            row["torch_best"] = best.removeprefix("torch:")
            row["auto_over_torch"] = paired_ratio(t[auto], t[best])
        rows.append(row)
    return rows


def bench_conv_layers(
    shape: Sequence[int], channels: Sequence[int], rounds: int
) -> list[dict[str, Any]]:
    """The profile of the step's convolutions, layer by layer: forward, input gradient and
    weight gradient as the harness computes them (``bench.layers.conv`` and its backward rule,
    each jitted alone, on one device), against PyTorch's forward and backward (default threads,
    channels_last, the fastest form of the step rows); milliseconds, interleaved."""
    from bench import layers

    h, w, c = shape
    rows = []
    dev = jax.devices()[0]
    key = jax.random.PRNGKey(0)
    for c_out in channels:
        x = jax.device_put(jax.random.normal(key, (BATCH, h, w, c)), dev)
        k = jax.device_put(jax.random.normal(key, (KERNEL, KERNEL, c, c_out)) * 0.1, dev)
        g = jax.device_put(jax.random.normal(key, (BATCH, h, w, c_out)), dev)
        fns: dict[str, Callable[[], Any]] = {}
        fwd = jax.jit(layers.conv)
        dx = jax.jit(lambda res, g: layers._conv_bwd(res, g)[0])
        dw = jax.jit(lambda res, g: layers._conv_bwd(res, g)[1])
        fns["xla_forward"] = functools.partial(fwd, x, k)
        fns["xla_input_grad"] = functools.partial(dx, (x, k), g)
        fns["xla_weight_grad"] = functools.partial(dw, (x, k), g)
        if _torch_available():
            fns.update(_torch_conv(c, c_out, h, w))
        t = interleaved(fns, rounds)
        ms = {n: 1e3 * median(v) for n, v in t.items()}
        flops = 2.0 * BATCH * h * w * KERNEL**2 * c * c_out
        row: dict[str, Any] = {"input": [h, w, c], "c_out": c_out, "flops": flops, "ms": ms}
        if "torch_backward_with_forward" in ms:
            xla = ms["xla_forward"] + ms["xla_input_grad"] + ms["xla_weight_grad"]
            row["xla_over_torch"] = xla / ms["torch_backward_with_forward"]
        rows.append(row)
        h, w, c = (h + 1) // 2, (w + 1) // 2, c_out
    return rows


def _torch_conv(c: int, c_out: int, h: int, w: int) -> dict[str, Callable[[], Any]]:
    import torch

    fmt = torch.channels_last
    conv = torch.nn.Conv2d(c, c_out, KERNEL, padding=KERNEL // 2)
    conv = conv.to(memory_format=fmt)  # type: ignore[call-overload]
    x = torch.randn(BATCH, c, h, w).contiguous(memory_format=fmt).requires_grad_(True)
    g = torch.randn(BATCH, c_out, h, w).contiguous(memory_format=fmt)

    def forward() -> None:
        with torch.no_grad():
            conv(x)

    def backward() -> None:  # forward with the graph, then both gradients
        conv(x).backward(g)

    return {"torch_forward": forward, "torch_backward_with_forward": backward}


# --------------------------------------------------------------------------- MNIST-1D CNN


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
