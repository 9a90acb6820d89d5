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

Errors are ``ValueError`` whose message starts with the offending key, raised before any
data is loaded or anything is compiled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Mapping
from typing import Any

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
    "gaussian",  # N(0, init_std^2)
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
    "init_std": 0.01,
    "prelu_mode": "layer",
    "pool": 3,  # max-pool window (stride 2) in the CNN: 3 (AlexNet, overlapping) or 2
    "loss_bound": 1e4,  # a lane whose loss exceeds this (or is not finite) has diverged
    "strategy": "auto",
    "max_lanes": 256,
    # per-layer diagnostics (bench.diagnostics): off by default, the program is then unchanged
    "diagnostics": False,
    "diag_every": 0,  # 0: every eval_every steps; else a multiple of eval_every dividing steps
    "diag_size": 512,  # measured on the first min(diag_size, eval_size) training examples
}
# Keys that leave the run id unchanged while diagnostics are off (runs made before they
# existed keep their id).
DIAGNOSTIC_KEYS = ("diagnostics", "diag_every", "diag_size")


def _err(key: str, msg: str) -> ValueError:
    return ValueError(f"{key}: {msg}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, int | float)) and not isinstance(v, bool)


def _check_int(key: str, v: Any, lo: int, hi: int | None = None) -> int:
    if not _is_int(v):
        raise _err(key, f"expected an integer, got {v!r}")
    if v < lo or (hi is not None and v > hi):
        raise _err(key, f"must be in [{lo}, {hi if hi is not None else 'inf'}], got {v}")
    return v


def _check_float(key: str, v: Any, *, positive: bool = False, finite: bool = True) -> float:
    if not _is_num(v):
        raise _err(key, f"expected a number, got {v!r}")
    v = float(v)
    if finite and not math.isfinite(v):
        raise _err(key, f"must be finite, got {v}")
    if positive and not v > 0:
        raise _err(key, f"must be > 0, got {v}")
    return v


def _check_choice(key: str, v: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(v, str) or v not in choices:
        raise _err(key, f"unknown value {v!r}; valid: {', '.join(choices)}")
    return v


def _activation_names() -> tuple[str, ...]:
    import activations

    return tuple(activations.names())


def _activation_params(name: str) -> dict[str, float]:
    import activations

    return dict(activations.info(name).params)


def _check_channels(key: str, v: Any) -> tuple[int, ...]:
    if not isinstance(v, list) or not v:
        raise _err(key, f"expected a non-empty list of positive integers, got {v!r}")
    return tuple(_check_int(key, c, 1, 4096) for c in v)


def _check_axis_value(key: str, v: Any) -> Any:
    """Validate one value of an axis; returns its canonical (hashable) form."""
    if key == "dataset":
        if not isinstance(v, str):
            raise _err(key, f"expected a dataset name, got {v!r}")
        return v  # the name is checked against bench.data in validate_data
    if key == "model":
        return _check_choice(key, v, MODELS)
    if key == "activation":
        return _check_choice(key, v, _activation_names())
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
        raise _err(key, "empty list: an axis needs at least one value")
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
    init_std: float
    prelu_mode: str
    pool: int
    loss_bound: float
    diagnostics: bool = False
    diag_every: int = 0  # resolved: a positive multiple of eval_every when diagnostics is on
    diag_size: int = 512

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
    init_std: float
    prelu_mode: str
    pool: int
    loss_bound: float
    strategy: str
    max_lanes: int
    diagnostics: bool = False
    diag_every: int = 0
    diag_size: int = 512

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
            else:
                out[f.name] = v
        return out

    def config_hash(self) -> str:
        """Short hash of the scientific content (execution settings excluded)."""
        d = {k: v for k, v in self.resolved().items() if k not in EXECUTION_KEYS}
        if not self.diagnostics:
            for k in DIAGNOSTIC_KEYS:
                del d[k]
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    def run_id(self) -> str:
        return f"{self.experiment}-{self.config_hash()}"


def parse(raw: Mapping[str, Any]) -> SweepConfig:
    """Validate a raw mapping (from TOML) into a ``SweepConfig``; ValueError names the key."""
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise _err(unknown[0], f"unknown key; valid keys: {', '.join(sorted(DEFAULTS))}")
    d = {**DEFAULTS, **raw}

    experiment = d["experiment"]
    if not isinstance(experiment, str) or not experiment:
        raise _err("experiment", f"expected a non-empty name, got {experiment!r}")
    if any(c in experiment for c in "/\\ ") or experiment.startswith("."):
        raise _err("experiment", f"must be usable as a directory name, got {experiment!r}")
    if not isinstance(d["description"], str):
        raise _err("description", "expected a string")

    axes = {k: _axis_values(k, d[k]) for k in (*STATIC_AXES, *DYNAMIC_AXES)}

    data_dir = d["data_dir"]
    if data_dir is not None and not isinstance(data_dir, str):
        raise _err("data_dir", f"expected a path string, got {data_dir!r}")
    if not isinstance(d["data"], Mapping):
        raise _err("data", f"expected a table of dataset options, got {d['data']!r}")

    steps_min = min(axes["steps"])
    eval_every = _check_int("eval_every", d["eval_every"], 1)
    if eval_every > steps_min:
        raise _err("eval_every", f"{eval_every} exceeds steps ({steps_min})")
    for s in axes["steps"]:
        if s % eval_every:
            raise _err("eval_every", f"must divide steps; {eval_every} does not divide {s}")
    eval_size = _check_int("eval_size", d["eval_size"], 1)
    target = _check_float("target", d["target"])
    if not 0 < target < 1:
        raise _err("target", f"a training error target must be in (0, 1), got {target}")
    momentum = _check_float("momentum", d["momentum"])
    if not 0 <= momentum < 1:
        raise _err("momentum", f"must be in [0, 1), got {momentum}")
    pool = d["pool"]
    if pool not in (2, 3) or isinstance(pool, bool):
        raise _err("pool", f"max-pool window must be 2 or 3, got {pool!r}")

    diagnostics = d["diagnostics"]
    if not isinstance(diagnostics, bool):
        raise _err("diagnostics", f"expected true or false, got {diagnostics!r}")
    diag_every = _check_int("diag_every", d["diag_every"], 0)
    diag_every = diag_every or eval_every
    if diag_every % eval_every:
        raise _err(
            "diag_every", f"must be a multiple of eval_every ({eval_every}), got {diag_every}"
        )
    for s in axes["steps"]:
        if s % diag_every:
            raise _err("diag_every", f"must divide steps; {diag_every} does not divide {s}")
    diag_size = _check_int("diag_size", d["diag_size"], 1)

    return SweepConfig(
        experiment=experiment,
        description=d["description"],
        axes=axes,
        data_dir=data_dir,
        data=dict(d["data"]),
        eval_every=eval_every,
        eval_size=eval_size,
        target=target,
        momentum=momentum,
        init_std=_check_float("init_std", d["init_std"], positive=True),
        prelu_mode=_check_choice("prelu_mode", d["prelu_mode"], PRELU_MODES),
        pool=pool,
        loss_bound=_check_float("loss_bound", d["loss_bound"], positive=True),
        strategy=_check_choice("strategy", d["strategy"], STRATEGIES),
        max_lanes=_check_int("max_lanes", d["max_lanes"], 1),
        diagnostics=diagnostics,
        diag_every=diag_every,
        diag_size=diag_size,
    )


def parse_override(item: str) -> tuple[str, Any]:
    """``key=value`` with the value parsed as TOML (bare words fall back to strings)."""
    if "=" not in item:
        raise ValueError(f"--set {item!r}: expected key=value")
    key, _, text = item.partition("=")
    key = key.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()  # e.g. --set activation=relu
    return key, value


def load(path: str, overrides: list[str] | tuple[str, ...] = ()) -> SweepConfig:
    """Read a TOML sweep file, apply ``--set`` overrides and validate."""
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    for item in overrides:
        k, v = parse_override(item)
        raw[k] = v
    return parse(raw)


def validate_data(cfg: SweepConfig) -> None:
    """Ask bench.data whether each dataset can be loaded (e.g. a CIFAR path exists)."""
    from bench import data

    for name in cfg.axes["dataset"]:
        data.validate(name, cfg.data_dir, **cfg.data)  # its messages name the key


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
            loss_bound=cfg.loss_bound,
            diagnostics=cfg.diagnostics,
            diag_every=cfg.diag_every,
            diag_size=cfg.diag_size,
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
