"""The small sweeps every timing family runs: a harness group and its compiled program.

``mlp_sweep`` builds one group of N configurations on MNIST-1D (an MLP or a CNN, SGD, N
learning rates) together with the harness's own initial weights and minibatch indices, so the
baselines (``bench.perf.sweeps``) train exactly the same thing; ``harness_program`` compiles the
group as ``python -m bench sweep`` would run it. Shared by the sweep, MFU, compile-time and CNN
measurements.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass
class SweepSetup:
    """One group of N small-MLP configurations, plus everything the baselines need to train
    exactly the same thing: the harness's initial weights and minibatch indices."""

    static: Any  # bench.config.GroupStatic
    configs: list[dict[str, Any]]
    data: Any  # bench.train.TrainData
    num_classes: int
    lrs: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray]]  # stacked over configurations
    batch_idx: np.ndarray  # (steps, batch)
    x_train: np.ndarray
    y_train: np.ndarray

    @property
    def model_flops(self) -> float:
        """6 * sum(in * out) * batch * steps * N (see ``bench.perf.mfu``)."""
        p = sum(w.shape[1] * w.shape[2] for w, _ in self.layers)
        return 6.0 * p * self.static.batch_size * self.static.steps * len(self.configs)


def default_lrs(n: int) -> np.ndarray:
    """N learning rates, log-spaced over a range where a tanh MLP on MNIST-1D trains stably."""
    return np.geomspace(0.01, 0.2, n).astype(np.float32)


def mlp_sweep(
    n_configs: int = 32,
    width: int = 32,
    depth: int = 4,
    steps: int = 200,
    batch: int = 128,
    activation: str = "tanh",
    model: str = "mlp",
    channels: Sequence[int] = (8, 16),
    lrs: Sequence[float] | None = None,
    seed: int = 0,
) -> SweepSetup:
    """Build one harness group on MNIST-1D, and the harness's own init and minibatches."""
    from bench import config, data, execute
    from bench.models import make_model

    lrs_arr = default_lrs(n_configs) if lrs is None else np.asarray(lrs, np.float32)
    raw: dict[str, Any] = {
        "experiment": "perf",
        "dataset": "mnist1d",
        "model": model,
        "activation": activation,
        "depth": depth,
        "width": width,
        "channels": list(channels),
        "optimizer": "sgd",
        "batch_size": batch,
        "steps": steps,
        "lr": [float(v) for v in lrs_arr],
        "seed": seed,
        "eval_every": steps,  # one evaluation at the end: timing is about training
        "eval_size": batch,
    }
    cfg = config.parse(raw)
    ((static, configs),) = config.expand(cfg)
    ds = data.load("mnist1d")
    td = execute.train_data(ds.x_train, ds.y_train, cfg.eval_size)
    k_init, k_data = jax.random.split(jax.random.PRNGKey(seed))
    batch_idx = harness_batch_indices(k_data, steps, batch, td.x_train.shape[0])
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    if model == "mlp":
        m = make_model(static, td.x_train.shape[1:], ds.num_classes)
        hp = {"init_scale": jnp.float32(1), "bias_init": jnp.float32(0), "slope": jnp.nan}
        p = jax.tree.map(np.asarray, m.init(k_init, hp))
        one = [(p["first"]["w"], p["first"]["b"])]
        one += [(p["hidden"]["w"][i], p["hidden"]["b"][i]) for i in range(depth - 1)]
        one += [(p["head"]["w"], p["head"]["b"])]
        stack = lambda a: np.ascontiguousarray(np.broadcast_to(a, (n_configs, *a.shape)))
        layers = [(stack(w), stack(b)) for w, b in one]
    return SweepSetup(
        static=static,
        configs=configs,
        data=td,
        num_classes=ds.num_classes,
        lrs=lrs_arr,
        layers=layers,
        batch_idx=np.asarray(batch_idx),
        x_train=np.asarray(td.x_train),
        y_train=np.asarray(td.y_train),
    )


def harness_batch_indices(k_data: jax.Array, steps: int, batch: int, n_train: int) -> np.ndarray:
    """The minibatch indices the harness draws, (steps, batch).

    Mirrors ``bench.train`` (keys: ``split(PRNGKey(seed)) -> (init key, data key)``; step t
    takes ``bits(fold_in(data key, t)) % n_train``), or calls ``bench.train.minibatch_indices``
    when the harness exposes one. ``tests/benchmarks`` checks that the baselines' final losses
    match the harness's, which fails loudly if the two ever drift apart.
    """
    from bench import train

    draw = getattr(train, "minibatch_indices", None)
    if draw is None:

        def draw(k, t, batch, n):
            bits = jax.random.bits(jax.random.fold_in(k, t), (batch,), jnp.uint32)
            return (bits % jnp.uint32(n)).astype(jnp.int32)

    ts = jnp.arange(steps, dtype=jnp.int32)
    return np.asarray(jax.vmap(lambda t: draw(k_data, t, batch, n_train))(ts))


def resolve_strategy(
    setup: SweepSetup, strategy: str, max_lanes: int, n_devices: int | None = None
) -> tuple[str, int]:
    """(strategy, lanes per chunk) as ``bench.execute.run_group`` would resolve them."""
    from bench import execute

    platform_ = jax.devices()[0].platform
    per_dev = -(-len(setup.configs) // (n_devices or jax.device_count()))
    return execute.plan(strategy, setup.static, per_dev, platform_, max_lanes)


def compile_group(
    static: Any,
    configs: Sequence[dict[str, Any]],
    data: Any,
    num_classes: int,
    strategy: str,
    max_lanes: int,
    devices: Sequence[jax.Device] | None = None,
) -> tuple[Callable[[], dict[str, jax.Array]], float, str]:
    """One group compiled as ``bench.execute.run_group`` would: the configurations padded to
    the mesh, ``strategy`` resolved (``max_lanes`` per chunk), the program lowered and compiled.
    Returns a no-argument callable, its compile seconds and the resolved strategy."""
    from bench import execute

    mesh = execute.config_mesh(devices)
    padded = list(configs) + [configs[-1]] * (-len(configs) % mesh.size)
    resolved, lanes = execute.plan(
        strategy, static, len(padded) // mesh.size, jax.devices()[0].platform, max_lanes
    )
    dyn = {k: jnp.asarray(v) for k, v in execute.dynamic_arrays(padded).items()}
    placed = jax.tree.map(jnp.asarray, data)  # None fields (no test split) stay None
    program = execute.build_program(static, num_classes, resolved, mesh, lanes)
    t0 = time.perf_counter()
    compiled = program.lower(dyn, placed).compile()
    compile_s = time.perf_counter() - t0
    return (lambda: compiled(dyn, placed)), compile_s, resolved


def harness_program(
    setup: SweepSetup,
    strategy: str = "auto",
    max_lanes: int | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> tuple[Callable[[], dict[str, jax.Array]], float, str]:
    """The harness's compiled group program as a no-argument callable, its compile seconds
    (lower + compile) and the resolved strategy. A forced ``chunked`` defaults to N/4 lanes a
    chunk (``auto`` picks its own, as in a sweep); ``devices`` defaults to all (the
    configurations are sharded over them, as in a sweep)."""
    from bench import execute

    default = execute.MAX_LANES if strategy == "auto" else max(1, len(setup.configs) // 4)
    lanes = default if max_lanes is None else max_lanes
    return compile_group(
        setup.static, setup.configs, setup.data, setup.num_classes, strategy, lanes, devices
    )


def harness_final_losses(out: Mapping[str, jax.Array], n: int) -> np.ndarray:
    return np.asarray(out["loss"])[:n, -1]
