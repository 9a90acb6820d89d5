"""The one table of activations: every test battery, sweep and doc page iterates over it.

Each entry carries the facts about an activation that explain how it trains (range,
zero-centring, saturation, maximal derivative, sparsity), checked numerically by the tests.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import jax

from . import _rectifiers as R
from . import _sigmoidal as S
from . import _smooth as M

INF = math.inf


@dataclasses.dataclass(frozen=True)
class ActivationInfo:
    """Facts about one activation, at its default hyperparameters.

    Attributes:
      name: canonical name (the jax.nn name where jax.nn has the function).
      fn: the function, ``fn(x, **params)``.
      params: default hyperparameters (keyword arguments of ``fn``).
      jax_nn: the jax.nn function computing the same thing at these defaults, or None.
      output_range: (inf, sup) of f over the reals, possibly infinite.
      zero_centred: E[f(z)] = 0 for z ~ N(0, 1). Outputs of both signs keep the incoming
        weight gradients of the next layer from all sharing one sign.
      monotonic: f is non-decreasing.
      bounded: output range bounded above and below.
      saturates: the tails where f'(x) -> 0: subset of ("-inf", "+inf").
      max_derivative: sup of |f'|.
      argmax_derivative: where it is reached: a point, or an interval (lo, hi) on which
        f' equals it; +-inf when only approached in a tail.
      sparse: f outputs exact zeros on a set of positive measure (true zeros, not underflow).
      residual: what the forward pass saves for the backward pass.
      reference: the paper.
    """

    name: str
    fn: Callable[..., jax.Array]
    params: Mapping[str, Any]
    jax_nn: Callable[[jax.Array], jax.Array] | None
    output_range: tuple[float, float]
    zero_centred: bool
    monotonic: bool
    bounded: bool
    saturates: tuple[str, ...]
    max_derivative: float
    argmax_derivative: float | tuple[float, float]
    sparse: bool
    residual: str
    reference: str

    @property
    def saturating(self) -> bool:
        """f' -> 0 in both tails (sigmoid, tanh): the classic 'saturating nonlinearity'."""
        return len(self.saturates) == 2


_BOTH = ("-inf", "+inf")
_LEFT = ("-inf",)
_MASK = "bool mask (1 byte/element)"
_X = "input x (same dtype)"
_X_GATE = "input x and the small sigmoid of the gate, sigmoid(-|z|) (same dtype)"

_SELU_MIN = -R.SELU_LAMBDA * R.SELU_ALPHA


def _entry(
    name: str,
    fn: Callable[..., jax.Array],
    jax_nn: Callable[[jax.Array], jax.Array] | None,
    params: Mapping[str, Any] | None = None,
    **facts: Any,
) -> ActivationInfo:
    return ActivationInfo(
        name=name, fn=fn, params=MappingProxyType(dict(params or {})), jax_nn=jax_nn, **facts
    )


_ENTRIES = (
    _entry("identity", R.identity, jax.nn.identity, output_range=(-INF, INF),
           zero_centred=True, monotonic=True, bounded=False, saturates=(),
           max_derivative=1.0, argmax_derivative=(-INF, INF), sparse=False,
           residual="nothing", reference="(linear unit)"),
    _entry("sigmoid", S.sigmoid, jax.nn.sigmoid, output_range=(0.0, 1.0),
           zero_centred=False, monotonic=True, bounded=True, saturates=_BOTH,
           max_derivative=0.25, argmax_derivative=0.0, sparse=False, residual=_X,
           reference="Rumelhart, Hinton, Williams 1986"),
    _entry("tanh", S.tanh, jax.nn.tanh, output_range=(-1.0, 1.0),
           zero_centred=True, monotonic=True, bounded=True, saturates=_BOTH,
           max_derivative=1.0, argmax_derivative=0.0, sparse=False, residual=_X,
           reference="LeCun, Bottou, Orr, Mueller 1998"),
    _entry("hard_tanh", S.hard_tanh, jax.nn.hard_tanh, output_range=(-1.0, 1.0),
           zero_centred=True, monotonic=True, bounded=True, saturates=_BOTH,
           max_derivative=1.0, argmax_derivative=(-1.0, 1.0), sparse=False, residual=_MASK,
           reference="Collobert 2004"),
    _entry("hard_sigmoid", S.hard_sigmoid, jax.nn.hard_sigmoid, output_range=(0.0, 1.0),
           zero_centred=False, monotonic=True, bounded=True, saturates=_BOTH,
           max_derivative=1 / 6, argmax_derivative=(-3.0, 3.0), sparse=True, residual=_MASK,
           reference="Howard et al. 2019 (MobileNetV3)"),
    _entry("soft_sign", S.soft_sign, jax.nn.soft_sign, output_range=(-1.0, 1.0),
           zero_centred=True, monotonic=True, bounded=True, saturates=_BOTH,
           max_derivative=1.0, argmax_derivative=0.0, sparse=False, residual=_X,
           reference="Bergstra et al. 2009; Glorot & Bengio 2010"),
    _entry("log_sigmoid", S.log_sigmoid, jax.nn.log_sigmoid, output_range=(-INF, 0.0),
           zero_centred=False, monotonic=True, bounded=False, saturates=("+inf",),
           max_derivative=1.0, argmax_derivative=-INF, sparse=False, residual=_X,
           reference="(log of the logistic function)"),
    _entry("relu", R.relu, jax.nn.relu, output_range=(0.0, INF),
           zero_centred=False, monotonic=True, bounded=False, saturates=_LEFT,
           max_derivative=1.0, argmax_derivative=(0.0, INF), sparse=True, residual=_MASK,
           reference="Nair & Hinton 2010; Glorot, Bordes, Bengio 2011"),
    _entry("relu6", R.relu6, jax.nn.relu6, output_range=(0.0, 6.0),
           zero_centred=False, monotonic=True, bounded=True, saturates=_BOTH,
           max_derivative=1.0, argmax_derivative=(0.0, 6.0), sparse=True, residual=_MASK,
           reference="Krizhevsky 2010"),
    _entry("leaky_relu", R.leaky_relu, jax.nn.leaky_relu, {"negative_slope": 0.01},
           output_range=(-INF, INF), zero_centred=False, monotonic=True, bounded=False,
           saturates=(), max_derivative=1.0, argmax_derivative=(0.0, INF), sparse=False,
           residual=_MASK + " for a Python-number slope, else x",
           reference="Maas, Hannun, Ng 2013"),
    _entry("prelu", R.prelu, lambda x: jax.nn.leaky_relu(x, 0.25), {"negative_slope": 0.25},
           output_range=(-INF, INF), zero_centred=False, monotonic=True, bounded=False,
           saturates=(), max_derivative=1.0, argmax_derivative=(0.0, INF), sparse=False,
           residual=_X + " and the slope", reference="He, Zhang, Ren, Sun 2015"),
    _entry("elu", R.elu, jax.nn.elu, {"alpha": 1.0}, output_range=(-1.0, INF),
           zero_centred=False, monotonic=True, bounded=False, saturates=_LEFT,
           max_derivative=1.0, argmax_derivative=(0.0, INF), sparse=False, residual=_X,
           reference="Clevert, Unterthiner, Hochreiter 2015"),
    _entry("celu", R.celu, jax.nn.celu, {"alpha": 1.0}, output_range=(-1.0, INF),
           zero_centred=False, monotonic=True, bounded=False, saturates=_LEFT,
           max_derivative=1.0, argmax_derivative=(0.0, INF), sparse=False, residual=_X,
           reference="Barron 2017"),
    _entry("selu", R.selu, jax.nn.selu, output_range=(_SELU_MIN, INF),
           zero_centred=True, monotonic=True, bounded=False, saturates=_LEFT,
           max_derivative=-_SELU_MIN, argmax_derivative=0.0, sparse=False, residual=_X,
           reference="Klambauer, Unterthiner, Mayr, Hochreiter 2017"),
    _entry("gelu", M.gelu, jax.nn.gelu, {"approximate": True},
           output_range=(-0.17004075057125403, INF), zero_centred=False, monotonic=False,
           bounded=False, saturates=_LEFT, max_derivative=1.128993068658772,
           argmax_derivative=1.4185040139608638, sparse=False, residual=_X_GATE,
           reference="Hendrycks & Gimpel 2016"),
    _entry("silu", M.silu, jax.nn.silu, {"beta": 1.0},
           output_range=(-0.2784645427610738, INF), zero_centred=False, monotonic=False,
           bounded=False, saturates=_LEFT, max_derivative=1.099839320128867,
           argmax_derivative=2.39935728316124, sparse=False, residual=_X_GATE,
           reference="Elfwing et al. 2017; Ramachandran, Zoph, Le 2017"),
    _entry("hard_silu", M.hard_silu, jax.nn.hard_silu, output_range=(-0.375, INF),
           zero_centred=False, monotonic=False, bounded=False, saturates=_LEFT,
           max_derivative=1.5, argmax_derivative=3.0, sparse=True, residual=_X,
           reference="Howard et al. 2019 (MobileNetV3)"),
    _entry("mish", M.mish, jax.nn.mish, output_range=(-0.30884341301725043, INF),
           zero_centred=False, monotonic=False, bounded=False, saturates=_LEFT,
           max_derivative=1.088498161251728, argmax_derivative=1.490571188535691,
           sparse=False, residual=_X, reference="Misra 2019"),
    _entry("softplus", M.softplus, jax.nn.softplus, {"beta": 1.0, "threshold": None},
           output_range=(0.0, INF), zero_centred=False, monotonic=True, bounded=False,
           saturates=_LEFT, max_derivative=1.0, argmax_derivative=INF, sparse=False,
           residual=_X, reference="Dugas et al. 2001; Glorot, Bordes, Bengio 2011"),
    _entry("squareplus", M.squareplus, jax.nn.squareplus, {"b": 4.0},
           output_range=(0.0, INF), zero_centred=False, monotonic=True, bounded=False,
           saturates=_LEFT, max_derivative=1.0, argmax_derivative=INF, sparse=False,
           residual=_X, reference="Barron 2021"),
)  # fmt: skip

_REGISTRY: dict[str, ActivationInfo] = {e.name: e for e in _ENTRIES}
_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}


def names() -> tuple[str, ...]:
    """Canonical names of all registered activations (aliases such as 'swish' excluded)."""
    return tuple(_REGISTRY)


def _resolve(name: str) -> ActivationInfo:
    key = _ALIASES.get(name, name) if isinstance(name, str) else None
    if key not in _REGISTRY:
        valid = ", ".join(sorted([*_REGISTRY, *_ALIASES]))
        raise ValueError(f"unknown activation {name!r}; valid names: {valid}")
    return _REGISTRY[key]


def get(name: str) -> Callable[..., jax.Array]:
    """The activation function registered as ``name`` (or an alias such as 'swish')."""
    return _resolve(name).fn


def info(name: str) -> ActivationInfo:
    """The facts registered for ``name``: range, centring, saturation, max derivative, ..."""
    return _resolve(name)
