"""Sweep configuration: parse a TOML grid into frozen dataclasses, validating everything first.

A sweep file is a flat TOML table. Every key has a default (see ``DEFAULTS``); an *axis* key
may be a scalar or a list of values, and the grid is their cartesian product.

- Static axes (``STATIC_AXES``: dataset, model, activation, depth, width, channels, init,
  optimizer, batch_size, steps) change the compiled program: each combination is one *group*,
  compiled once.
- Dynamic axes (``DYNAMIC_AXES``: lr, seed, init_scale, bias_init, slope) are traced values:
  all their combinations run inside their group's single program (vmapped, chunked or
  sequential, see ``bench.execute``).
- Everything else is a scalar setting shared by the sweep (target, eval_every, strategy, ...),
  among them the per-layer diagnostics (``diagnostics``, ``diag_every``, ``diag_size``; see
  ``bench.diagnostics``), which change the run id only when switched on.

``channels`` is itself a list, so a list of ints is one value and a list of lists is an axis.
``slope`` sets the activation's first numeric hyperparameter (leaky_relu/prelu
``negative_slope``, elu/celu ``alpha``, silu/softplus ``beta``, squareplus ``b``); it is
ignored (recorded as null) for activations without one (relu, tanh, gelu, ...).

``init_std`` (``init = "gaussian"``: weights drawn from N(0, init_std^2)) is one std for every
weight layer, or a list with one per weight layer in network order (cnn: each conv layer, then
the dense head; mlp: the first layer, each of the depth - 1 hidden layers, then the output
layer), e.g. cuda-convnet's layers-18pct ``init_std = [1e-4, 1e-2, 1e-2, 1e-2]``. A list
needs every network of the sweep to have its length; a list of equal values is stored as that
one value (it draws the same weights, hence the same run id).

``activation`` accepts the registry's aliases ('swish') and stores the canonical name
('silu'), so a run id does not depend on which spelling a file used.

Errors are ``bench.errors.UsageError`` (a ``ValueError``) whose message starts with the
offending key and ends with what to do (the closest valid names for a misspelt key or value),
raised before any data is loaded or anything is compiled. Everything but the activation names
is checked without importing JAX; ``load`` adds where the value came from (the file or the
``--set`` override) and reports TOML syntax errors as ``FILE:LINE:COLUMN``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.errors import UsageError, did_you_mean

MODELS = ("mlp", "cnn")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
INITS = (
    "standard",  # Glorot & Bengio 2010: U[-1/sqrt(fan_in), 1/sqrt(fan_in)]
    "xavier_uniform",
    "xavier_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "gaussian",  # N(0, init_std^2); init_std may give one std per weight layer
    "orthogonal",
)
STRATEGIES = ("auto", "vmap", "chunked", "sequential")
PRELU_MODES = ("layer", "channel")
MAX_DEPTH = 200

STATIC_AXES = (
    "dataset",
    "model",
    "activation",
    "depth",
    "width",
    "channels",
    "init",
    "optimizer",
    "batch_size",
    "steps",
)
DYNAMIC_AXES = ("lr", "seed", "init_scale", "bias_init", "slope")
# Settings that only choose *how* a sweep executes: excluded from the run id, so rerunning a
# sweep with another strategy resumes the same run.
EXECUTION_KEYS = ("strategy", "max_lanes")

DEFAULTS: dict[str, Any] = {
    "experiment": "sweep",
    "description": "",
    # static axes
    "dataset": "mnist1d",
    "model": "mlp",
    "activation": "relu",
    "depth": 4,
    "width": 64,
    "channels": [32, 32, 64],
    "init": "lecun_normal",
    "optimizer": "sgd",
    "batch_size": 128,
    "steps": 1000,
    # dynamic axes
    "lr": 0.1,
    "seed": 0,
    "init_scale": 1.0,
    "bias_init": 0.0,
    "slope": None,  # None: the activation's default hyperparameter
    # scalar settings
    "data_dir": None,
    "data": {},  # extra options for bench.data.load, e.g. {num_samples = 5000}
    "eval_every": 25,
    "eval_size": 1000,
    "target": 0.25,
    "momentum": 0.9,
    "init_std": 0.01,  # gaussian init: one std, or a list with one per weight layer
    "prelu_mode": "layer",
    "pool": 3,  # max-pool window (stride 2) in the CNN: 3 (AlexNet, overlapping) or 2
    "pool_type": "max",  # CNN pooling: "max" or "avg", or a list with one per conv layer
    "architecture": "alexnet",  # CNN preset; "cifar_18pct" pools max, avg, avg (POOL_PRESETS)
    "loss_bound": 1e4,  # a lane whose loss exceeds this (or is not finite) has diverged
    "strategy": "auto",
    "max_lanes": 256,
    # per-layer diagnostics (bench.diagnostics): off by default, the program is then unchanged
    "diagnostics": False,
    "diag_every": 0,  # 0: every eval_every steps; else a multiple of eval_every dividing steps
    "diag_size": 512,  # measured on the first min(diag_size, eval_size) training examples
    # measurement protocol (bench.protocol): "grid" runs the grid as given; "tuned" searches
    # the lr on tuning_seeds, extending the grid until the best lr is bracketed, then measures
    # it on the `seed` axis (fresh seeds)
    "protocol": "grid",
    "tuning_seeds": [1000, 1001, 1002],
    "lr_factor": 0.0,  # spacing of grid extensions; 0: the grid's own spacing at each end
    "lr_extensions": 4,  # extensions per direction before the bracket is flagged open
    # stop a configuration once its training error has stayed <= target for this many
    # evaluations in a row (0: train to the end of the budget)
    "early_exit": 0,
    # the last val_size training examples are held out from training; every run records its
    # error on them (and on the test split) at the end and where it reached the target
    "val_size": 0,
    # hidden activations phi(h) - act_offset (one number, or one per hidden layer): a centred
    # variant with phi' unchanged (sigmoid - 1/2 is act_offset = 0.5)
    "act_offset": 0.0,
    # initialise each bias after a hidden layer as bias_init + W @ offset, so that at init the
    # network computes exactly the function of act_offset = 0 (MLP only)
    "fold_offset": False,
    # diagnostics: |phi'| below this fraction of its maximum counts as saturated
    "saturation_rtol": 0.01,
}
# Keys that leave the run id unchanged while diagnostics are off (runs made before they
# existed keep their id).
DIAGNOSTIC_KEYS = ("diagnostics", "diag_every", "diag_size")
PROTOCOLS = ("grid", "tuned")
# Keys added after results were committed: left out of the run id at their default, so older
# run directories keep their ids.
LATER_KEYS: tuple[str, ...] = (
    "protocol",
    "tuning_seeds",
    "lr_factor",
    "lr_extensions",
    "early_exit",
    "val_size",
)
LATER_KEYS += ("pool_type", "architecture")
LATER_KEYS += ("act_offset", "fold_offset", "saturation_rtol")
POOL_TYPES = ("max", "avg")
# CNN topologies by name -> their pool types (None: as ``pool_type`` says). cuda-convnet's
# layers-18pct.cfg: conv 5x5 (32) -> max-pool 3/2 -> conv 5x5 (32) -> avg-pool 3/2 -> conv 5x5
# (64) -> avg-pool 3/2 -> fc 10 (its response normalisation layers are not modelled).
POOL_PRESETS: dict[str, tuple[str, ...] | None] = {
    "alexnet": None,
    "cifar_18pct": ("max", "avg", "avg"),
}


def _err(key: str, problem: str, hint: str) -> UsageError:
    return UsageError(key, problem, hint)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, int | float)) and not isinstance(v, bool)


def _example(key: str, fallback: Any) -> str:
    """``key = <its default>`` (TOML) as an example of a valid value, else the fallback."""
    v = DEFAULTS.get(key)
    return f"{key} = {json.dumps(fallback if v is None else v)}"


def _check_int(key: str, v: Any, lo: int, hi: int | None = None) -> int:
    span = f"[{lo}, {hi if hi is not None else 'inf'}]"
    if not _is_int(v):
        raise _err(key, f"expected an integer, got {v!r}", f"use e.g. {_example(key, lo)}")
    if v < lo or (hi is not None and v > hi):
        near = lo if v < lo else hi
        raise _err(key, f"must be in {span}, got {v}", f"use an integer in {span}, e.g. {near}")
    return v


def _check_float(key: str, v: Any, *, positive: bool = False, finite: bool = True) -> float:
    if not _is_num(v):
        raise _err(key, f"expected a number, got {v!r}", f"use e.g. {_example(key, 1.0)}")
    v = float(v)
    if finite and not math.isfinite(v):
        raise _err(key, f"must be finite, got {v}", f"use e.g. {_example(key, 1.0)}")
    if positive and not v > 0:
        raise _err(
            key, f"must be > 0, got {v}", f"use a positive number, e.g. {_example(key, 1.0)}"
        )
    return v


def _check_choice(key: str, v: Any, choices: Sequence[str]) -> str:
    if not isinstance(v, str) or v not in choices:
        raise _err(key, f"unknown value {v!r}", did_you_mean(v, choices))
    return v


def _check_activation(key: str, v: Any) -> str:
    """A registered name or alias -> its canonical name (imports the library, hence JAX)."""
    import activations

    if isinstance(v, str):
        try:
            return activations.info(v).name
        except ValueError:
            pass
    raise _err(key, f"unknown value {v!r}", did_you_mean(v, activations.names()))


def _activation_params(name: str) -> dict[str, float]:
    import activations

    return dict(activations.info(name).params)


def _check_channels(key: str, v: Any) -> tuple[int, ...]:
    if not isinstance(v, list) or not v:
        raise _err(
            key,
            f"expected a non-empty list of positive integers, got {v!r}",
            "use e.g. channels = [32, 32, 64] (a list of such lists is an axis)",
        )
    return tuple(_check_int(key, c, 1, 4096) for c in v)


def _check_axis_value(key: str, v: Any) -> Any:
    """Validate one value of an axis; returns its canonical (hashable) form."""
    if key == "dataset":
        if not isinstance(v, str):
            raise _err(key, f"expected a dataset name, got {v!r}", 'use e.g. dataset = "mnist1d"')
        return v  # the name is checked against bench.data at the end of parse
    if key == "model":
        return _check_choice(key, v, MODELS)
    if key == "activation":
        return _check_activation(key, v)
    if key == "depth":
        return _check_int(key, v, 1, MAX_DEPTH)
    if key == "width":
        return _check_int(key, v, 1, 1 << 16)
    if key == "channels":
        return _check_channels(key, v)
    if key == "init":
        return _check_choice(key, v, INITS)
    if key == "optimizer":
        return _check_choice(key, v, OPTIMIZERS)
    if key == "batch_size":
        return _check_int(key, v, 1, 1 << 20)
    if key == "steps":
        return _check_int(key, v, 1, 1 << 30)
    if key == "lr":
        return _check_float(key, v, positive=True)
    if key == "seed":
        return _check_int(key, v, 0, 2**31 - 1)
    if key == "init_scale":
        return _check_float(key, v, positive=True)
    if key == "bias_init":
        return _check_float(key, v)
    if key == "slope":
        return None if v is None else _check_float(key, v)
    raise AssertionError(key)


def _axis_values(key: str, raw: Any) -> tuple[Any, ...]:
    """An axis given as a scalar or a list -> tuple of validated, de-duplicated values."""
    if key == "channels":
        is_list = isinstance(raw, list) and raw and all(isinstance(c, list) for c in raw)
        values = raw if is_list else [raw]
    else:
        values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise _err(key, "empty list", f"an axis needs at least one value, e.g. {_example(key, 1)}")
    out = []
    for v in values:
        c = _check_axis_value(key, v)
        if c not in out:
            out.append(c)
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class GroupStatic:
    """Everything that shapes one compiled training program (one group of configurations)."""

    dataset: str
    model: str
    activation: str
    depth: int  # MLP: hidden layers; CNN: number of conv layers (= len(channels))
    width: int | None  # MLP only
    channels: tuple[int, ...] | None  # CNN only
    init: str
    optimizer: str
    batch_size: int
    steps: int
    eval_every: int
    eval_size: int
    momentum: float
    # gaussian init: one std for every weight layer, or one per weight layer in network order
    init_std: float | tuple[float, ...]
    prelu_mode: str
    pool: int
    loss_bound: float
    diagnostics: bool = False
    diag_every: int = 0  # resolved: a positive multiple of eval_every when diagnostics is on
    diag_size: int = 512
    pool_type: str | tuple[str, ...] = "max"  # one for every layer, or one per conv layer
    target: float = 0.0  # training error target (what early_exit waits for)
    early_exit: int = 0  # evaluations at or below target before a lane stops (0: never)
    # phi(h) - act_offset: one for every hidden layer, or one per hidden layer (conv layer)
    act_offset: float | tuple[float, ...] = 0.0
    fold_offset: bool = False  # MLP: biases start at bias_init + W @ offset (same function)
    saturation_rtol: float = 0.01  # diagnostics: |phi'| < this x max |phi'| is saturated

    @property
    def num_diags(self) -> int:
        """Diagnostic points at steps 0, diag_every, ..., steps (0 when diagnostics are off)."""
        return self.steps // self.diag_every + 1 if self.diagnostics else 0

    @property
    def num_evals(self) -> int:
        """Evaluations at steps 0, eval_every, ..., steps."""
        return self.steps // self.eval_every + 1

    @property
    def slope_param(self) -> str | None:
        """Name of the activation hyperparameter that the ``slope`` axis sets, if any."""
        params = _activation_params(self.activation)
        # Only a numeric hyperparameter can be a traced axis (gelu's ``approximate`` is a
        # Python bool that picks the formula).
        numeric = (k for k, v in params.items() if isinstance(v, float) and not isinstance(v, bool))
        return next(numeric, None)


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: scalar settings plus the value tuple of every axis."""

    experiment: str
    description: str
    axes: Mapping[str, tuple[Any, ...]]  # every STATIC_AXES and DYNAMIC_AXES key
    data_dir: str | None
    data: Mapping[str, Any]
    eval_every: int
    eval_size: int
    target: float
    momentum: float
    init_std: float | tuple[float, ...]
    prelu_mode: str
    pool: int
    loss_bound: float
    strategy: str
    max_lanes: int
    diagnostics: bool = False
    diag_every: int = 0
    diag_size: int = 512
    protocol: str = "grid"
    tuning_seeds: tuple[int, ...] = (1000, 1001, 1002)
    lr_factor: float = 0.0
    lr_extensions: int = 4
    early_exit: int = 0
    val_size: int = 0
    pool_type: str | tuple[str, ...] = "max"
    architecture: str = "alexnet"
    act_offset: float | tuple[float, ...] = 0.0
    fold_offset: bool = False
    saturation_rtol: float = 0.01

    def resolved(self) -> dict[str, Any]:
        """The full resolved config as plain JSON data (what the run directory stores)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "axes":
                for k, vals in v.items():
                    out[k] = [list(x) if isinstance(x, tuple) else x for x in vals]
            elif f.name == "data":
                out[f.name] = dict(v)
            elif f.name == "tuning_seeds" or (f.name == "init_std" and isinstance(v, tuple)):
                out[f.name] = list(v)
            elif f.name == "act_offset" and isinstance(v, tuple):
                out[f.name] = list(v)
            else:
                out[f.name] = v
        return out

    def config_hash(self) -> str:
        """Short hash of the scientific content (execution settings excluded)."""
        from bench.data import LATER_OPTIONS

        d = {k: v for k, v in self.resolved().items() if k not in EXECUTION_KEYS}
        # Dataset options added later, given at their default, hash as if left out.
        d["data"] = {
            k: v for k, v in d["data"].items() if k not in LATER_OPTIONS or LATER_OPTIONS[k] != v
        }
        if not self.diagnostics:
            for k in DIAGNOSTIC_KEYS:
                del d[k]
        for k in LATER_KEYS:
            if d[k] == DEFAULTS[k]:
                del d[k]
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    def run_id(self) -> str:
        return f"{self.experiment}-{self.config_hash()}"


def _check_pooling(
    raw: Mapping[str, Any], d: Mapping[str, Any], axes: Mapping[str, tuple], pool: int
) -> tuple[str, str | tuple[str, ...]]:
    """(architecture, pool_type): one pool type, or one per conv layer of every channels value."""
    architecture = _check_choice("architecture", d["architecture"], tuple(POOL_PRESETS))
    v = d["pool_type"]
    hint = 'use pool_type = "max", "avg" or a list of them, one per conv layer'
    if isinstance(v, list):
        if not v:
            raise _err("pool_type", "empty list", hint)
        kinds = tuple(_check_choice("pool_type", k, POOL_TYPES) for k in v)
    else:
        kinds = (_check_choice("pool_type", v, POOL_TYPES),)
    preset = POOL_PRESETS[architecture]
    if preset is not None:
        if "pool_type" in raw and kinds != preset:
            raise _err(
                "pool_type",
                f"{architecture} pools {', '.join(preset)}, got {v!r}",
                "leave pool_type out with an architecture preset",
            )
        if pool != 3:
            raise _err("pool", f"{architecture} pools with window 3, got {pool}", "use pool = 3")
        kinds = preset
    if len(kinds) > 1 and "cnn" in axes["model"]:
        for ch in axes["channels"]:
            if len(ch) != len(kinds):
                key = "channels" if preset is not None else "pool_type"
                raise _err(
                    key,
                    f"{len(kinds)} pool types ({', '.join(kinds)}) for {len(ch)} conv layers "
                    f"(channels {list(ch)})",
                    "give as many channels as pool types",
                )
    # One pool type for every layer is stored as a string (the default "max" keeps run ids).
    return architecture, kinds[0] if len(set(kinds)) == 1 and preset is None else kinds


def _weight_layers(axes: Mapping[str, tuple]) -> dict[int, str]:
    """Number of weight layers -> an example of a network of the sweep that has that many."""
    out: dict[int, str] = {}
    for model in axes["model"]:
        if model == "mlp":  # the first layer, depth - 1 hidden layers, the output layer
            for depth in axes["depth"]:
                out.setdefault(depth + 1, f"the mlp of depth {depth}")
        else:  # every conv layer, then the dense head
            for ch in axes["channels"]:
                out.setdefault(len(ch) + 1, f"the cnn with channels {list(ch)}")
    return out


def _check_init_std(v: Any, axes: Mapping[str, tuple]) -> float | tuple[float, ...]:
    """One std, or a list with one per weight layer of every network of the sweep.

    A list whose values are all equal is stored as that one value: it draws the same weights,
    so it keeps the scalar's run id.
    """
    if not isinstance(v, list):
        return _check_float("init_std", v, positive=True)
    layers = _weight_layers(axes)
    counts = " or ".join(map(str, sorted(layers)))
    hint = (
        f"give {counts} stds, one per weight layer in network order (cnn: each conv layer, "
        "then the head; mlp: the first layer, each hidden layer, then the output layer)"
    )
    if not v:
        raise _err("init_std", "empty list", hint)
    stds = tuple(_check_float("init_std", x, positive=True) for x in v)
    others = [i for i in axes["init"] if i != "gaussian"]
    if others:
        raise _err(
            "init_std",
            f'a list of stds is for init = "gaussian" only, the sweep has init {others[0]!r}',
            'use init = "gaussian", or one number for init_std',
        )
    if len(layers) > 1:
        (a, net_a), (b, net_b) = sorted(layers.items())[:2]
        raise _err(
            "init_std",
            f"a list needs one network size, but {net_a} has {a} weight layers and {net_b} {b}",
            "sweep depth or channels in separate runs, or give init_std as one number",
        )
    ((n, net),) = layers.items()
    if len(stds) != n:
        raise _err("init_std", f"{len(stds)} stds for the {n} weight layers of {net}", hint)
    return stds[0] if len(set(stds)) == 1 else stds


def _check_offset(d: Mapping[str, Any], axes: Mapping[str, tuple]) -> dict[str, Any]:
    """``act_offset`` (one finite number, or a list with one per hidden layer of every network
    of the sweep; equal values are stored as one), ``fold_offset`` and ``saturation_rtol``."""
    v = d["act_offset"]
    offset: float | tuple[float, ...]
    if isinstance(v, list):
        hint = "give one number, or one per hidden layer (mlp: depth; cnn: len(channels))"
        offs = tuple(_check_float("act_offset", x) for x in v)
        sizes = {n - 1 for n in _weight_layers(axes)}  # hidden layers = weight layers - 1
        if not offs or sizes != {len(offs)}:
            raise _err("act_offset", f"{len(offs)} offsets for {sorted(sizes)} hidden layers", hint)
        offset = offs[0] if len(set(offs)) == 1 else offs
    else:
        offset = _check_float("act_offset", v)
    fold = d["fold_offset"]
    if not isinstance(fold, bool):
        raise _err("fold_offset", f"expected true or false, got {fold!r}", "use fold_offset = true")
    if fold and "cnn" in axes["model"]:
        raise _err(
            "fold_offset",
            "the CNN's zero padding makes the fold inexact at the borders",
            'use fold_offset = true with model = "mlp" only',
        )
    rtol = _check_float("saturation_rtol", d["saturation_rtol"], positive=True)
    if rtol > 1:
        raise _err("saturation_rtol", f"must be in (0, 1], got {rtol}", "use e.g. 0.1")
    return {"act_offset": offset, "fold_offset": fold, "saturation_rtol": rtol}


def parse(raw: Mapping[str, Any]) -> SweepConfig:
    """Validate a raw mapping (from TOML) into a ``SweepConfig``; UsageError names the key."""
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise _err(unknown[0], "unknown key", did_you_mean(unknown[0], sorted(DEFAULTS), "keys"))
    d = {**DEFAULTS, **raw}

    experiment = d["experiment"]
    name_hint = 'use a name without "/", "\\", spaces or a leading ".", e.g. experiment = "mine"'
    if not isinstance(experiment, str) or not experiment:
        raise _err("experiment", f"expected a non-empty name, got {experiment!r}", name_hint)
    if any(c in experiment for c in "/\\ ") or experiment.startswith("."):
        raise _err(
            "experiment", f"must be usable as a directory name, got {experiment!r}", name_hint
        )
    if not isinstance(d["description"], str):
        raise _err("description", "expected a string", 'use e.g. description = "what it tests"')

    # The activation names last: checking them imports the activation library, hence JAX,
    # and every other mistake is reported faster without it.
    names = [k for k in (*STATIC_AXES, *DYNAMIC_AXES) if k != "activation"]
    axes = {k: _axis_values(k, d[k]) for k in names}

    data_dir = d["data_dir"]
    if data_dir is not None and not isinstance(data_dir, str):
        raise _err(
            "data_dir", f"expected a path string, got {data_dir!r}", 'use e.g. data_dir = "/data"'
        )
    if not isinstance(d["data"], Mapping):
        raise _err(
            "data",
            f"expected a table of dataset options, got {d['data']!r}",
            "use e.g. data = {num_samples = 5000}",
        )

    steps = axes["steps"]
    divide_hint = f"use a divisor of every steps value ({', '.join(map(str, steps))})"
    eval_every = _check_int("eval_every", d["eval_every"], 1)
    if eval_every > min(steps):
        raise _err("eval_every", f"{eval_every} exceeds steps ({min(steps)})", divide_hint)
    for s in steps:
        if s % eval_every:
            raise _err(
                "eval_every", f"must divide steps; {eval_every} does not divide {s}", divide_hint
            )
    eval_size = _check_int("eval_size", d["eval_size"], 1)
    target = _check_float("target", d["target"])
    if not 0 < target < 1:
        raise _err(
            "target",
            f"a training error target must be in (0, 1), got {target}",
            "use a fraction of misclassified examples, e.g. target = 0.25",
        )
    momentum = _check_float("momentum", d["momentum"])
    if not 0 <= momentum < 1:
        raise _err("momentum", f"must be in [0, 1), got {momentum}", "use e.g. momentum = 0.9")
    pool = d["pool"]
    if pool not in (2, 3) or isinstance(pool, bool):
        raise _err(
            "pool", f"max-pool window must be 2 or 3, got {pool!r}", "use pool = 3 or pool = 2"
        )
    architecture, pool_type = _check_pooling(raw, d, axes, pool)

    diagnostics = d["diagnostics"]
    if not isinstance(diagnostics, bool):
        raise _err(
            "diagnostics",
            f"expected true or false, got {diagnostics!r}",
            "use diagnostics = true or false",
        )
    diag_every = _check_int("diag_every", d["diag_every"], 0)
    diag_every = diag_every or eval_every
    diag_hint = f"use 0 (every eval_every) or a multiple of {eval_every} dividing steps"
    if diag_every % eval_every:
        raise _err(
            "diag_every",
            f"must be a multiple of eval_every ({eval_every}), got {diag_every}",
            diag_hint,
        )
    for s in steps:
        if s % diag_every:
            raise _err(
                "diag_every", f"must divide steps; {diag_every} does not divide {s}", diag_hint
            )
    protocol = _check_choice("protocol", d["protocol"], PROTOCOLS)
    tuning_seeds = d["tuning_seeds"]
    if not isinstance(tuning_seeds, list) or not tuning_seeds:
        raise _err(
            "tuning_seeds",
            f"expected a non-empty list of seeds, got {tuning_seeds!r}",
            "use e.g. tuning_seeds = [1000, 1001, 1002]",
        )
    tuning_seeds = tuple(dict.fromkeys(_check_int("tuning_seeds", v, 0) for v in tuning_seeds))
    shared = sorted(set(tuning_seeds) & set(axes["seed"]))
    if protocol == "tuned" and shared:
        raise _err(
            "tuning_seeds",
            f"seeds {shared} are also measurement seeds (the seed axis)",
            "use seeds that pick the lr and seeds that measure it from disjoint sets",
        )
    lr_factor = _check_float("lr_factor", d["lr_factor"])
    if lr_factor != 0 and lr_factor <= 1:
        raise _err("lr_factor", f"must be 0 or > 1, got {lr_factor}", "use e.g. lr_factor = 2.0")
    early_exit = _check_int("early_exit", d["early_exit"], 0)
    if early_exit and diagnostics:
        raise _err(
            "early_exit",
            "diagnostics run to the end of the budget",
            "use early_exit = 0 with diagnostics = true",
        )
    settings = dict(
        protocol=protocol,
        tuning_seeds=tuning_seeds,
        lr_factor=lr_factor,
        lr_extensions=_check_int("lr_extensions", d["lr_extensions"], 0),
        early_exit=early_exit,
        val_size=_check_int("val_size", d["val_size"], 0),
        experiment=experiment,
        description=d["description"],
        data_dir=data_dir,
        data=dict(d["data"]),
        eval_every=eval_every,
        eval_size=eval_size,
        target=target,
        momentum=momentum,
        init_std=_check_init_std(d["init_std"], axes),
        prelu_mode=_check_choice("prelu_mode", d["prelu_mode"], PRELU_MODES),
        pool=pool,
        pool_type=pool_type,
        architecture=architecture,
        loss_bound=_check_float("loss_bound", d["loss_bound"], positive=True),
        strategy=_check_choice("strategy", d["strategy"], STRATEGIES),
        max_lanes=_check_int("max_lanes", d["max_lanes"], 1),
        diagnostics=diagnostics,
        diag_every=diag_every,
        diag_size=_check_int("diag_size", d["diag_size"], 1),
        **_check_offset(d, axes),
    )
    from bench import data  # numpy, hence after the checks that need nothing

    for name in axes["dataset"]:
        _check_choice("dataset", name, data.names())
    axes["activation"] = _axis_values("activation", d["activation"])
    axes = {k: axes[k] for k in (*STATIC_AXES, *DYNAMIC_AXES)}
    return SweepConfig(axes=axes, **settings)


_OVERRIDE_HINT = "use KEY=VALUE with a TOML value, e.g. --set depth=8 or --set 'lr=[0.1, 0.01]'"


def _toml_problem(e: tomllib.TOMLDecodeError) -> tuple[str, int | None, int | None]:
    """(message, line, column) of a TOML error (Python < 3.14 has the position in the text)."""
    msg = str(e)
    m = re.search(r" \(at (?:line (\d+), column (\d+)|end of document)\)$", msg)
    if m is None:
        return msg, getattr(e, "lineno", None), getattr(e, "colno", None)
    line, col = (int(m[1]), int(m[2])) if m[1] else (None, None)
    return msg[: m.start()], line, col


def parse_override(item: str) -> tuple[str, Any]:
    """``key=value`` with the value parsed as TOML (bare words fall back to strings)."""
    key, eq, text = item.partition("=")
    key = key.strip()
    if not eq or not key:
        raise UsageError(f"--set {item}", "expected KEY=VALUE", _OVERRIDE_HINT)
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError as e:
        value = text.strip()  # e.g. --set activation=relu
        # Brackets, braces and quotes start TOML values: a parse error there is a typo, and
        # the string fallback would only turn it into a confusing type error later.
        if not value or value[0] in "[{\"'":
            problem = _toml_problem(e)[0]
            problem = problem[:1].lower() + problem[1:]
            raise UsageError(
                f"--set {item}", f"not a valid TOML value ({problem})", _OVERRIDE_HINT
            ) from e
    return key, value


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; UsageError names the file (and line) when it cannot be read."""
    name = str(path)
    hint = "give a sweep TOML file, e.g. bench/configs/quick.toml"
    try:
        text = Path(path).read_bytes().decode()
    except FileNotFoundError:
        raise UsageError(name, "no such file", hint) from None
    except IsADirectoryError:
        raise UsageError(name, "is a directory, not a TOML file", hint) from None
    except UnicodeDecodeError as e:
        raise UsageError(name, f"not UTF-8 text (byte {e.start})", hint) from None
    except OSError as e:
        raise UsageError(name, f"cannot read it: {e.strerror or e}", hint) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        problem, line, col = _toml_problem(e)
        if line is None:  # "at end of document": the last line
            line, col = text.count("\n") + (not text.endswith("\n")), None
        where = f"{name}:{line}" + (f":{col}" if col else "")
        raise UsageError(
            where,
            f"invalid TOML: {problem[:1].lower()}{problem[1:]}",
            f"fix line {line} (syntax: https://toml.io)",
        ) from None


def load(path: str | Path, overrides: Sequence[str] = ()) -> SweepConfig:
    """Read a TOML sweep file, apply ``--set`` overrides and validate.

    A UsageError about a key says where its value came from: the file or the override.
    """
    raw = read_toml(path)
    source = {}
    for item in overrides:
        k, v = parse_override(item)
        raw[k] = v
        source[k] = f"--set {item}"
    try:
        return parse(raw)
    except UsageError as e:
        where = source.get(e.subject, str(path))
        raise UsageError(e.subject, f"{e.problem} (from {where})", e.hint) from e


def validate_data(cfg: SweepConfig, *, full: bool = False) -> None:
    """Ask bench.data whether each dataset can be loaded (e.g. a CIFAR path exists).

    ``full``: also load each dataset (memoised by bench.data, so the sweep that follows does
    not load it again), so that corrupt or truncated files, and an ``eval_size`` larger than
    the training set, are reported before anything is written or compiled.
    """
    from bench import data

    for name in cfg.axes["dataset"]:
        data.validate(name, cfg.data_dir, **cfg.data)  # its messages name the key
        if not full:
            continue
        n = len(data.load(name, data_dir=cfg.data_dir, **cfg.data).x_train)
        if cfg.eval_size > n:
            raise UsageError(
                "eval_size",
                f"{cfg.eval_size} exceeds the {n} training examples of {name}",
                f"use eval_size <= {n}, or more training data",
            )


def expand(cfg: SweepConfig) -> list[tuple[GroupStatic, list[dict[str, Any]]]]:
    """The grid as groups: (static, [dynamic values of each configuration]) in a fixed order.

    Axes a model does not use collapse (an MLP ignores channels, a CNN depth/width), and so
    does ``slope`` for activations without a hyperparameter, so no configuration is repeated.
    """
    a = cfg.axes
    groups: dict[GroupStatic, None] = {}
    for values in itertools.product(*(a[k] for k in STATIC_AXES)):
        s = dict(zip(STATIC_AXES, values, strict=True))
        mlp = s["model"] == "mlp"
        static = GroupStatic(
            dataset=s["dataset"],
            model=s["model"],
            activation=s["activation"],
            depth=s["depth"] if mlp else len(s["channels"]),
            width=s["width"] if mlp else None,
            channels=None if mlp else s["channels"],
            init=s["init"],
            optimizer=s["optimizer"],
            batch_size=s["batch_size"],
            steps=s["steps"],
            eval_every=cfg.eval_every,
            eval_size=cfg.eval_size,
            momentum=cfg.momentum,
            init_std=cfg.init_std,
            prelu_mode=cfg.prelu_mode,
            pool=cfg.pool,
            pool_type=cfg.pool_type,
            loss_bound=cfg.loss_bound,
            diagnostics=cfg.diagnostics,
            diag_every=cfg.diag_every,
            diag_size=cfg.diag_size,
            target=cfg.target,
            early_exit=cfg.early_exit,
            act_offset=cfg.act_offset,
            fold_offset=cfg.fold_offset,
            saturation_rtol=cfg.saturation_rtol,
        )
        groups.setdefault(static)
    out = []
    for static in groups:
        if static.slope_param is None:
            slopes: tuple[Any, ...] = (None,)
        else:  # an unset slope means the activation's default, recorded as its value
            default = _activation_params(static.activation)[static.slope_param]
            slopes = tuple(dict.fromkeys(default if v is None else v for v in a["slope"]))
        dyn_axes = {**a, "slope": slopes}
        configs = [
            dict(zip(DYNAMIC_AXES, v, strict=True))
            for v in itertools.product(*(dyn_axes[k] for k in DYNAMIC_AXES))
        ]
        out.append((static, configs))
    return out
