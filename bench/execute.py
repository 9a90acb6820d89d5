"""Run one group: every configuration of a static setting inside one compiled program.

Strategies (how a device runs its share of the configuration axis):

- ``vmap``: ``jax.vmap`` over configurations, one batched program.
- ``chunked``: ``lax.map(..., batch_size=max_lanes)``: vmapped chunks, one after another.
- ``sequential``: ``lax.map`` without batching: configurations one after another, still one
  program, so there is no per-step or per-configuration dispatch.

``auto`` follows the measurements in FINDINGS.md:

- CPU, CNN -> sequential, sharded over the per-core devices: XLA CPU turns vmapped
  convolutions into grouped convolutions, and a configuration's convolutions run on one
  thread. Measured (results/perf, 8 configurations, 28x28x1, ms per configuration-step):
  16-16-32: sharded 50.1, one device 63.4, vmapped pairs 144.1; 32-32-64: 102.9, 174.3,
  363.9.
- CPU, MLP -> vmapped chunks of ``CPU_CHUNK_FLOATS // (batch * width)`` lanes (one layer's
  activations of a chunk, 128 KiB, stay in a core's L2 cache): vmap when the device's share
  fits one chunk, sequential when a chunk would hold one lane. At batch 128: 8 lanes at width
  32, 4 at width 64, 2 at 128, sequential from 256. Measured on 2 cores (results/perf: 32
  configurations, width 64, seconds for 100 steps, 9 interleaved rounds): vmap 0.68, chunks of
  8 0.72, chunks of 4 0.66, sequential 0.69; FINDINGS.md: a full vmap ran 0.73x as fast as
  sequential at width 256.
- GPU/TPU -> vmap, or chunked when a device's share exceeds ``max_lanes`` (memory).

On a CPU the ``bench`` command line first splits the processor into one JAX device per usable
core (``--cpu-devices``, ``bench.cli.configure_cpu_devices``): XLA runs a small training
step's kernels on one thread, so a single CPU device leaves the other cores idle, and the
configurations sharded over per-core devices run side by side (measured on 2 cores, 32 MLPs of
width 64: 1.9x; a width-256 MLP: 47% -> 72% of the matmul peak).

The configuration axis is sharded over every visible device (all processes' devices in a
multi-host run): a 1-D ``Mesh`` named ``"config"``, the dynamic-hparam arrays placed with
``NamedSharding(mesh, P("config"))`` and ``shard_map`` running the strategy on each device's
block. The axis is padded to a multiple of the device count (repeating the last configuration)
and the padding dropped afterwards. Results are gathered to every process
(``process_allgather``); only process 0 writes files (``bench.sweep``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from bench.config import GroupStatic
from bench.train import Probe, TrainData, make_train

LANES = "lanes"  # name of the vmapped axis of a device's block (progress sums over it)
MAX_LANES = 256  # default lanes per device in one vmapped program (memory bound on accelerators)
CPU_CHUNK_FLOATS = 1 << 15  # lanes x batch x width of one vmapped chunk on a CPU


def plan(
    requested: str, static: GroupStatic, lanes_per_device: int, platform: str, max_lanes: int
) -> tuple[str, int]:
    """(strategy, lanes per vmapped chunk): ``auto`` resolved by the rule in the module
    docstring; a forced strategy keeps ``max_lanes``."""
    if requested != "auto":
        return requested, max_lanes
    if platform == "cpu":
        if static.model == "cnn":
            return "sequential", 1
        assert static.width is not None
        lanes = min(max_lanes, CPU_CHUNK_FLOATS // (static.batch_size * static.width))
        if lanes <= 1:
            return "sequential", 1
        return ("vmap" if lanes_per_device <= lanes else "chunked"), lanes
    return ("vmap" if lanes_per_device <= max_lanes else "chunked"), max_lanes


def config_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over all (global) devices, axis name ``"config"``."""
    return Mesh(np.array(devices if devices is not None else jax.devices()), ("config",))


def dynamic_arrays(configs: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Stack the dynamic values of the configurations into arrays over the config axis."""

    def col(k, dtype):
        return np.array([np.nan if c[k] is None else c[k] for c in configs], dtype)

    return {
        "lr": col("lr", np.float32),
        "seed": col("seed", np.int32),
        "init_scale": col("init_scale", np.float32),
        "bias_init": col("bias_init", np.float32),
        "slope": col("slope", np.float32),  # NaN where unused: never read then
    }


def _put(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    # Works in multi-process runs too: each process holds the full host array and supplies
    # the pieces its devices own.
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def build_program(
    static: GroupStatic,
    num_classes: int,
    strategy: str,
    mesh: Mesh,
    max_lanes: int,
    probe: Probe | None = None,
    progress: Callable[[int], None] | None = None,
):
    """The jitted group program ``(dynamic arrays, TrainData) -> stacked metrics``.

    With ``progress``, the dynamic arrays carry ``real`` (1 for a configuration, 0 for
    padding) and the program calls ``progress(n)`` on the host after every evaluation chunk
    (``run_group``).
    """
    on_chunk = _progress_hook(progress, strategy) if progress is not None else None
    train = make_train(static, num_classes, probe, on_chunk)

    def lane(d, data):
        return train(d, jax.random.PRNGKey(d["seed"]), data)

    sharded = jax.shard_map(
        device_block(lane, strategy, max_lanes),
        mesh=mesh,
        in_specs=(P("config"), P()),
        out_specs=P("config"),
        check_vma=False,
    )
    return jax.jit(sharded)


def device_block(lane: Callable[..., Any], strategy: str, max_lanes: int) -> Callable[..., Any]:
    """``lane(config, *shared)`` run over one device's block of configurations (leading axis
    of ``config``'s leaves) with ``strategy``; ``shared`` arguments are the same for all."""

    def block(configs, *shared):
        def vmapped(cs):
            return jax.vmap(lambda c: lane(c, *shared), axis_name=LANES)(cs)

        if strategy == "vmap":
            return vmapped(configs)
        if strategy == "sequential":
            return jax.lax.map(lambda c: lane(c, *shared), configs)
        # chunked: lax.map(..., batch_size=max_lanes) written out, to name the vmap axis
        n = jax.tree.leaves(configs)[0].shape[0]
        q = n // max_lanes * max_lanes
        if q == 0:
            return vmapped(configs)
        chunks = jax.tree.map(lambda x: x[:q].reshape(-1, max_lanes, *x.shape[1:]), configs)
        out = jax.tree.map(lambda y: y.reshape(q, *y.shape[2:]), jax.lax.map(vmapped, chunks))
        if q == n:
            return out
        rest = vmapped(jax.tree.map(lambda x: x[q:], configs))
        return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), out, rest)

    return block


def _progress_hook(progress: Callable[[int], None], strategy: str):
    """``on_chunk`` for ``make_train``: a host callback ``progress(configurations that
    finished a chunk)``, once per vmapped block (a psum over its lanes) rather than once per
    lane (``jax.debug.callback`` under vmap unrolls into one call per lane). The evaluation is
    an argument so that the call waits for the chunk's work."""

    def on_chunk(dynamic, evaluated):
        n = dynamic["real"]
        if strategy != "sequential":
            n, evaluated = jax.lax.psum(n, LANES), jax.lax.psum(evaluated, LANES)
        jax.debug.callback(lambda k, _: progress(int(k)), n, evaluated)

    return on_chunk


def run_group(
    static: GroupStatic,
    configs: Sequence[dict[str, Any]],
    data: TrainData,
    num_classes: int,
    *,
    strategy: str = "auto",
    max_lanes: int = MAX_LANES,
    mesh: Mesh | None = None,
    probe: Probe | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Train every configuration of a group; returns (metrics with leading axis len(configs),
    timing {"compile_s", "run_s", "n_configs", "strategy"}).

    ``progress(n)`` is called from a host callback thread while the program runs, each time
    ``n`` configurations finish an evaluation chunk (``eval_every`` steps); the calls of this
    process's devices add up to ``len(configs) * steps // eval_every`` (padding not counted).
    Without it the program has no callback.
    """
    mesh = mesh if mesh is not None else config_mesh()
    if len(configs) < mesh.size and jax.process_count() == 1:
        # Fewer configurations than devices: padding would train copies that compete with
        # the real ones for the same cores; use as many devices as there are configurations.
        mesh = config_mesh(list(mesh.devices.flat[: len(configs)]))
    n, n_dev = len(configs), mesh.size
    padded = list(configs) + [configs[-1]] * (-n % n_dev)
    platform = mesh.devices.flat[0].platform
    strategy, max_lanes = plan(strategy, static, len(padded) // n_dev, platform, max_lanes)

    host = dynamic_arrays(padded)
    if progress is not None:
        host["real"] = (np.arange(len(padded)) < n).astype(np.int32)
    dyn = {k: _put(v, NamedSharding(mesh, P("config"))) for k, v in host.items()}
    replicated = NamedSharding(mesh, P())
    data = jax.tree.map(lambda x: _put(np.asarray(x), replicated), data)  # None stays None

    program = build_program(static, num_classes, strategy, mesh, max_lanes, probe, progress)
    t0 = time.perf_counter()
    compiled = program.lower(dyn, data).compile()
    t1 = time.perf_counter()
    out = jax.block_until_ready(compiled(dyn, data))
    t2 = time.perf_counter()
    if jax.process_count() > 1:
        out = multihost_utils.process_allgather(out, tiled=True)
    metrics = {k: np.asarray(v)[:n] for k, v in out.items()}
    timing = {"compile_s": t1 - t0, "run_s": t2 - t1, "n_configs": n, "strategy": strategy}
    return metrics, timing


def train_data(
    x_train, y_train, eval_size: int, x_test=None, y_test=None, val_size: int = 0
) -> TrainData:
    """Training arrays plus the fixed evaluation subset (the first eval_size examples), the
    test split when given, and a validation split of the last ``val_size`` training examples,
    which are then held out from training."""
    x, y = np.asarray(x_train, np.float32), np.asarray(y_train, np.int32)
    x_val = y_val = None
    if val_size:
        x, x_val, y, y_val = x[:-val_size], x[-val_size:], y[:-val_size], y[-val_size:]
    x_test = None if x_test is None else np.asarray(x_test, np.float32)
    y_test = None if y_test is None else np.asarray(y_test, np.int32)
    return TrainData(x, y, x[:eval_size], y[:eval_size], x_test, y_test, x_val, y_val)


__all__ = [
    "Probe",
    "TrainData",
    "build_program",
    "config_mesh",
    "device_block",
    "plan",
    "run_group",
    "train_data",
]
