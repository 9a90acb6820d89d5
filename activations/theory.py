"""Mean-field signal propagation through a deep fully connected network at initialisation.

Setting (Poole et al. 2016; Schoenholz et al. 2017): weights ``W ~ N(0, sigma_w^2 / N)``,
biases ``b ~ N(0, sigma_b^2)``, pre-activations ``h_l = W_l phi(h_{l-1}) + b_l``. In the wide
limit every pre-activation is Gaussian with second moment ``q_l`` and

* length map:        ``q_l = L(q_{l-1}) = sigma_w^2 E[phi(sqrt(q_{l-1}) z)^2] + sigma_b^2``
* gradient factor:   ``chi(q) = sigma_w^2 E[phi'(sqrt(q) z)^2]``: the mean squared gradient
  with respect to ``h_l`` is ``chi(q_l)`` times that with respect to ``h_{l+1}``
* ``q*`` the fixed point of ``L`` reached from ``q0``, ``chi_1 = chi(q*)``, and the depth
  scale ``xi = -1 / log(chi_1)``

with ``z ~ N(0, 1)``. ``act`` is everywhere a registered name (``activations.names()``) or any
elementwise JAX function differentiable by ``jax.grad`` (pass hyperparameters with
``functools.partial``).

Conventions at the edges (the same in every function):

* No finite fixed point. For activations that grow linearly (relu, selu, gelu, elu, ...) and
  ``sigma_w`` large enough, ``q_l`` grows without bound. :func:`q_star` then returns
  ``math.inf``; :func:`chi1` returns the limit the per-layer factor tends to as ``q_l -> inf``
  (:func:`chi_infinity`, e.g. ``sigma_w^2 lambda^2 / 2`` for selu), which is what a deep
  network measures; it never returns ``chi`` at a fixed point that does not exist.
* ``q* = 0``. When ``L(0) = 0`` and the map contracts towards 0 (tanh at ``sigma_w <= 1``,
  ``sigma_b = 0``), :func:`q_star` returns exactly ``0.0``, even where the iteration gets
  there only like ``1/l`` (tanh at ``sigma_w = 1``): the fixed point is found by bracketing
  the roots of ``L(q) - q``, not by iterating.
* Depth scale: ``xi = -1 / log(chi_1)`` with its sign: positive in the ordered phase
  (gradients shrink by ``e`` every ``xi`` layers), ``inf`` at ``chi_1 = 1``, negative in the
  chaotic phase (they grow by ``e`` every ``|xi|`` layers).

Quadrature: Gauss-Legendre on panels of the standard normal measure over ``|z| <= 10``
(mass outside: 1.5e-23). The panel ends are a fixed grid in ``z`` plus a grid in ``x`` (the
scale on which activations change shape, mapped to ``z = x / sqrt(q)``) plus the kinks of
``phi`` and ``phi'``, which are located numerically once per function. Every panel then holds a
smooth integrand, so relu, hard_tanh or relu6 are integrated as accurately as tanh (about 1e-15,
see tests/test_theory.py); plain Gauss-Hermite converges only algebraically across a kink.
Everything is evaluated in float64, ``phi'`` with ``jax.grad``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "LayerPrediction",
    "chi",
    "chi1",
    "chi_infinity",
    "critical_sigma_w",
    "depth_scale",
    "length_map",
    "moments",
    "predict_layers",
    "q_star",
]

Activation = str | Callable[..., Any]

_Z = 10.0  # integrate |z| <= 10
_Z_GRID = np.linspace(-_Z, _Z, 41)  # panels of width 0.5 in z
# Panel ends in x: activations change shape on |x| ~ 0.1 .. 50 (tanh saturates by ~20), and
# algebraic tails (soft_sign' = (1 + |x|)^-2) need geometric panels further out. Mapped to
# z = x / sqrt(q) they resolve phi(sqrt(q) z) however large q is.
_X_SCALES = np.union1d(2.0 ** np.arange(-3, 25), 3.0 * 2.0 ** np.arange(5))
_X_GRID = np.concatenate([-_X_SCALES[::-1], [0.0], _X_SCALES])
N_NODES = 16  # Gauss-Legendre nodes per panel (~1200 evaluations per q)
_Q_INFINITY = 1e16  # chi_infinity evaluates chi here: corrections are O(q^-1/2) = 1e-8
_ZERO_RTOL = 1e-13  # |L(q0) - q0| <= this * q0: q0 is itself a fixed point
_Q_MAX = 1e19  # q_star searches for a fixed point up to max(2^64 q0, _Q_MAX)


class LayerPrediction(NamedTuple):
    """Layer-by-layer mean-field prediction for layers ``l = 1 .. depth`` (index ``l - 1``).

    Attributes:
      q: second moment of the pre-activations, ``q_l = L(q_{l-1})`` from ``q_0 = q0``.
      chi: ``chi(q_l)``, the predicted ratio of mean squared gradients, layer l over layer l+1.
      grad: predicted mean squared gradient with respect to ``h_l`` relative to the top layer,
        ``prod_{k=l}^{depth-1} chi(q_k)`` (1 at ``l = depth``).
    """

    q: np.ndarray
    chi: np.ndarray
    grad: np.ndarray


# --------------------------------------------------------------------------------------------
# Evaluating phi and phi' in float64, and locating kinks.


class _Fn:
    """An activation compiled for float64 evaluation of (phi, phi'), with its kinks."""

    def __init__(self, phi: Callable[..., Any], label: str):
        self.label = label
        dphi = jax.vmap(jax.grad(lambda x: phi(x)))  # reverse mode: custom_vjp has no jvp
        self._both = jax.jit(lambda x: (phi(x), dphi(x)))
        with jax.enable_x64(True):
            self.breaks = np.unique(np.concatenate([_X_GRID, self._kinks()]))

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Pad to a power of two (>= 2048): a handful of compiled shapes serve every call.
        x = np.asarray(x, np.float64)
        size = max(2048, 1 << (x.size - 1).bit_length())
        with jax.enable_x64(True):
            f, d = self._both(jnp.asarray(np.pad(x, (0, size - x.size))))
            f, d = np.asarray(f)[: x.size], np.asarray(d)[: x.size]
        if not (np.all(np.isfinite(f)) and np.all(np.isfinite(d))):
            bad = np.asarray(x)[~(np.isfinite(f) & np.isfinite(d))]
            raise FloatingPointError(
                f"activation {self.label} is not finite in float64 at x = {bad[:3]}"
            )
        return f, d

    def _kinks(self, reach: float = 64.0, step: float = 1 / 256) -> np.ndarray:
        """Points in [-reach, reach] where phi or phi' jumps, to ~1e-15.

        A jump shows as one grid difference much larger than the differences two cells away
        (two, so that a kink value set to the mean of both sides, i.e. two half-size
        differences side by side, is still caught). Bisection then pins it down. False alarms
        on steep smooth features only add a panel end, which costs nothing in accuracy.
        """
        x = np.arange(-reach, reach + step / 2, step)
        cells: list[int] = []
        for y in self(x):
            d = np.abs(np.diff(y))
            near = np.maximum(np.roll(d, 2), np.roll(d, -2))
            big = (d > 1e-9 * (1.0 + np.max(np.abs(y)))) & (d > 8.0 * near)
            big[:2] = big[-2:] = False
            cells.extend(np.flatnonzero(big))
        if not cells:
            return np.zeros(0)
        lo, hi = x[np.array(cells)], x[np.array(cells) + 1]
        # Bisect on both phi and phi' at once: keep the half whose ends differ more.
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            (fl, dl), (fm, dm), (fh, dh) = self(lo), self(mid), self(hi)
            left = np.maximum(np.abs(fm - fl), np.abs(dm - dl))
            right = np.maximum(np.abs(fh - fm), np.abs(dh - dm))
            go_left = left >= right
            hi = np.where(go_left, mid, hi)
            lo = np.where(go_left, lo, mid)
        kinks = np.unique(np.round(0.5 * (lo + hi), 12))
        return kinks[:64]


@functools.lru_cache(maxsize=64)
def _compile(act: Activation) -> _Fn:
    if isinstance(act, str):
        from ._registry import get  # lazy: the registry imports the activation modules

        return _Fn(get(act), repr(act))  # get raises ValueError for unknown names
    if callable(act):
        return _Fn(act, getattr(act, "__name__", repr(act)))
    raise TypeError(f"act must be a registered name or a callable, got {type(act).__name__}")


def _fn(act: Activation) -> _Fn:
    try:
        return _compile(act)
    except TypeError as e:  # unhashable callable: compile without caching
        if not callable(act) or "unhashable" not in str(e):
            raise
        return _Fn(act, repr(act))


# --------------------------------------------------------------------------------------------
# Gaussian expectations.


@functools.lru_cache(maxsize=8)
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def _moments(fn: _Fn, q: np.ndarray, n: int = N_NODES) -> tuple[np.ndarray, np.ndarray]:
    """(E[phi(sqrt(q) z)^2], E[phi'(sqrt(q) z)^2]) for a 1-d array of q >= 0."""
    # q = 0 is taken as the limit q -> 0+: a kink at 0 counts both sides (relu: E[phi'^2] = 1/2,
    # not relu'(0)^2 = 0), as it does for every layer of a net whose q_l decays towards 0.
    s = np.sqrt(np.maximum(q, 1e-300))[:, None]
    # Panel ends: z grid, and the x grid + kinks seen at this q (q = 0: all pushed to +-Z).
    zx = fn.breaks[None, :] / s
    ends = np.sort(
        np.clip(
            np.concatenate([np.broadcast_to(_Z_GRID, zx.shape[:1] + _Z_GRID.shape), zx], axis=1),
            -_Z,
            _Z,
        ),
        axis=1,
    )
    mid, half = 0.5 * (ends[:, 1:] + ends[:, :-1]), 0.5 * (ends[:, 1:] - ends[:, :-1])
    t, w = _legendre(n)
    z = mid[..., None] + half[..., None] * t  # (q, panel, node); empty panels weigh 0
    wz = half[..., None] * w * np.exp(-0.5 * z * z)
    wz /= wz.sum(axis=(1, 2), keepdims=True)  # the 1.5e-23 outside |z| <= 10 is dropped
    f, d = fn((s[..., None] * z).ravel())
    f, d = f.reshape(z.shape), d.reshape(z.shape)
    m2, d2 = (wz * f * f).sum(axis=(1, 2)), (wz * d * d).sum(axis=(1, 2))
    if np.any(q == 0):  # exactly: the mean over both sides of 0 (no rounding in the weights)
        f0, d0 = fn(np.array([1e-300, -1e-300]))
        m2[q == 0], d2[q == 0] = np.mean(f0 * f0), np.mean(d0 * d0)
    return m2, d2


def _as_q(q: Any) -> np.ndarray:
    qa = np.asarray(q, np.float64)
    if np.any(~(qa >= 0)):
        raise ValueError(f"q must be >= 0 (a second moment), got {q!r}")
    return qa


def _out(x: np.ndarray, like: np.ndarray) -> Any:
    return float(x.reshape(())) if like.ndim == 0 else x.reshape(like.shape)


def moments(act: Activation, q: Any, *, n: int = N_NODES) -> tuple[Any, Any]:
    """``(E[phi(sqrt(q) z)^2], E[phi'(sqrt(q) z)^2])``, z ~ N(0, 1), for scalar or array q.

    ``n`` is the number of Gauss-Legendre nodes per panel (see the module docstring).

    >>> m2, d2 = moments("relu", 3.0)
    >>> round(m2, 12), round(d2, 12)
    (1.5, 0.5)
    """
    qa = _as_q(q)
    m2, d2 = _moments(_fn(act), qa.reshape(-1), n)
    return _out(m2, qa), _out(d2, qa)


def length_map(act: Activation, q: Any, sigma_w: float, sigma_b: float) -> Any:
    """``L(q) = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2`` for scalar or array q.

    >>> round(length_map("relu", 2.0, 2.0, 0.5), 12)  # 4 * 2 / 2 + 0.25
    4.25
    """
    qa = _as_q(q)
    m2, _ = _moments(_fn(act), qa.reshape(-1))
    return _out(sigma_w**2 * m2 + sigma_b**2, qa)


def chi(act: Activation, q: Any, sigma_w: float) -> Any:
    """``chi(q) = sigma_w^2 E[phi'(sqrt(q) z)^2]``: gradient factor of a layer whose
    pre-activations have second moment ``q`` (scalar or array).

    >>> round(chi("tanh", 0.0, 1.0), 12)
    1.0
    """
    qa = _as_q(q)
    _, d2 = _moments(_fn(act), qa.reshape(-1))
    return _out(sigma_w**2 * d2, qa)


# --------------------------------------------------------------------------------------------
# Fixed point of the length map.


def _brent(
    f: Callable[[float], float],
    a: float,
    b: float,
    fa: float,
    fb: float,
    xtol: float,
    max_iter: int,
) -> float:
    """Root of f in [a, b] (f(a), f(b) of opposite signs): Brent's method as in scipy's
    brentq (inverse quadratic interpolation, bisection as the safeguard)."""
    xpre, xcur, fpre, fcur = a, b, fa, fb
    xblk = fblk = spre = scur = 0.0
    for _ in range(max_iter):
        if fpre * fcur < 0:
            xblk, fblk = xpre, fpre
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        delta = 0.5 * (xtol + 4 * np.finfo(float).eps * abs(xcur))
        sbis = 0.5 * (xblk - xcur)
        if fcur == 0 or abs(sbis) < delta:
            return xcur
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            if xpre == xblk:  # secant
                stry = -fcur * (xcur - xpre) / (fcur - fpre)
            else:  # inverse quadratic interpolation
                dpre = (fpre - fcur) / (xpre - xcur)
                dblk = (fblk - fcur) / (xblk - xcur)
                stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            if 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta):
                spre, scur = scur, stry
            else:
                spre = scur = sbis
        else:
            spre = scur = sbis
        xpre, fpre = xcur, fcur
        xcur += scur if abs(scur) > delta else math.copysign(delta, sbis)
        fcur = f(xcur)
    raise RuntimeError(f"root finder did not converge in {max_iter} iterations")


def _q_star(fn: _Fn, sw: float, sb: float, q0: float, tol: float, max_iter: int) -> float:
    def excess(q: np.ndarray) -> np.ndarray:  # L(q) - q
        out: np.ndarray = sw**2 * _moments(fn, q)[0] + sb**2 - q
        return out

    f0 = float(excess(np.array([q0]))[0])
    if abs(f0) <= _ZERO_RTOL * q0 or f0 == 0:  # selu at (1, 0) from 1; relu at (sqrt 2, 0)
        return q0

    def scalar(q: float) -> float:
        return float(excess(np.array([q]))[0])

    # L is non-decreasing for the usual activations, so iterating from q0 moves monotonically to
    # the nearest root of L(q) - q in the direction of its sign at q0: bracket that root on a
    # geometric grid (one vectorised evaluation), then polish it.
    if f0 > 0:
        start = q0 if q0 > 0 else f0  # from q0 = 0 the first iterate is L(0) = f0
        grid = np.geomspace(start, max(2.0**64 * start, _Q_MAX), 65)[1 if q0 > 0 else 0 :]
        # Only a clearly negative excess brackets a root: at large q the excess of a map with
        # L(q) ~ q (relu at sigma_w^2 = 2, sigma_b > 0) is rounding noise of either sign.
        below = np.flatnonzero(excess(grid) < -1e-10 * grid)
        if below.size == 0:
            return math.inf  # no fixed point below max(2^64 q0, 1e19): q_l grows unboundedly
        k, hi = below[0], float(grid[below[0]])
        lo = q0 if k == 0 else float(grid[k - 1])
        flo = f0 if k == 0 else scalar(lo)
        if flo <= 0:  # grid[k - 1] lay in the rounding band around 0: bracket from q0
            lo, flo = q0, f0
        return _brent(scalar, lo, hi, flo, scalar(hi), tol, max_iter)
    floor = min(tol, 0.5 * q0)
    grid = np.geomspace(q0, floor, 65)[1:]
    above = np.flatnonzero(excess(grid) >= 0)
    if above.size:
        k, lo = above[0], float(grid[above[0]])
        hi = q0 if k == 0 else float(grid[k - 1])
        fhi, flo = (f0 if k == 0 else scalar(hi)), scalar(lo)
        return lo if flo == 0 else _brent(scalar, lo, hi, flo, fhi, tol, max_iter)
    f_zero = scalar(0.0)  # = L(0) >= 0
    if f_zero <= tol:  # L(0) = 0: the map contracts to q* = 0 (tanh at sigma_w <= 1, b = 0)
        return 0.0
    return _brent(scalar, 0.0, float(grid[-1]), f_zero, scalar(float(grid[-1])), tol, max_iter)


def _broadcast(f: Callable[..., float], *args: Any) -> Any:
    arrays = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in args))
    if arrays[0].ndim == 0:
        return float(f(*(float(a) for a in arrays)))
    out = np.empty(arrays[0].shape)
    for i in np.ndindex(out.shape):
        out[i] = f(*(float(a[i]) for a in arrays))
    return out


def _check_sigmas(sigma_w: Any, sigma_b: Any) -> None:
    if np.any(~(np.asarray(sigma_w) >= 0)) or np.any(~(np.asarray(sigma_b) >= 0)):
        raise ValueError(f"sigma_w, sigma_b must be >= 0, got {sigma_w!r}, {sigma_b!r}")


def q_star(
    act: Activation,
    sigma_w: Any,
    sigma_b: Any,
    *,
    q0: float = 1.0,
    tol: float = 1e-12,
    max_iter: int = 200,
) -> Any:
    """The fixed point ``q*`` of the length map reached by iterating it from ``q0``.

    Returns ``math.inf`` when ``q_l`` grows without bound (no fixed point up to
    ``max(2^64 q0, 1e19)``), and exactly ``0.0`` when the map contracts to 0 (``L(0) = 0``
    and no root of ``L(q) - q`` in ``[tol, q0)``). ``tol`` is the absolute tolerance on
    ``q*`` (plus 4 ulp relative); ``max_iter`` bounds the root finder. ``sigma_w`` and
    ``sigma_b`` broadcast: arrays in, an array out. Assumes ``L`` is non-decreasing in ``q``
    (checked for every registered activation in tests/test_theory.py), so that the iteration
    moves monotonically to the nearest fixed point.

    >>> round(q_star("relu", 1.0, 0.5), 12)  # sigma_b^2 / (1 - sigma_w^2 / 2)
    0.5
    >>> q_star("relu", 2.0, 0.1), q_star("tanh", 1.0, 0.0)
    (inf, 0.0)
    """
    _check_sigmas(sigma_w, sigma_b)
    if not q0 >= 0:
        raise ValueError(f"q0 must be >= 0, got {q0!r}")
    fn = _fn(act)
    return _broadcast(lambda w, b: _q_star(fn, w, b, float(q0), tol, max_iter), sigma_w, sigma_b)


def chi_infinity(act: Activation, sigma_w: Any) -> Any:
    """``lim_{q -> inf} chi(q)``: the per-layer gradient factor once ``q_l`` has grown without
    bound. For ``phi`` with slopes ``a+-`` in its two tails it is
    ``sigma_w^2 (a+^2 + a-^2) / 2`` (selu: ``sigma_w^2 lambda^2 / 2``); evaluated as
    ``chi(1e16)``, where the ``O(q^-1/2)`` corrections of smooth activations are ~1e-8.

    >>> round(chi_infinity("selu", 2.0), 3)
    2.208
    """
    fn = _fn(act)
    d2 = _moments(fn, np.array([_Q_INFINITY]))[1][0]
    return _broadcast(lambda w: w**2 * d2, sigma_w)


def chi1(act: Activation, sigma_w: Any, sigma_b: Any, *, q0: float = 1.0) -> Any:
    """``chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]``, the per-layer gradient factor at the fixed
    point, or :func:`chi_infinity` where ``q* = inf`` (the factor a deep network tends to).
    Broadcasts over ``sigma_w``, ``sigma_b``.

    >>> round(chi1("relu", 1.0, 0.3), 12), round(chi1("selu", 2.0, 0.0), 3)
    (0.5, 2.208)
    """
    _check_sigmas(sigma_w, sigma_b)
    fn = _fn(act)

    def one(w: float, b: float) -> float:
        q = _q_star(fn, w, b, float(q0), 1e-12, 200)
        c: float = (
            chi_infinity(act, w) if math.isinf(q) else w**2 * _moments(fn, np.array([q]))[1][0]
        )
        return c

    return _broadcast(one, sigma_w, sigma_b)


def depth_scale(act: Activation, sigma_w: Any, sigma_b: Any, *, q0: float = 1.0) -> Any:
    """Signed gradient depth scale ``xi = -1 / log(chi_1)``.

    ``xi > 0`` (ordered phase, ``chi_1 < 1``): gradients shrink by ``e`` every ``xi`` layers.
    ``xi = inf`` at ``chi_1 = 1``. ``xi < 0`` (chaotic phase): they grow by ``e`` every
    ``|xi|`` layers. ``0`` when ``chi_1 = 0``.

    >>> round(depth_scale("relu", 1.0, 0.0), 6)  # chi_1 = 1/2
    1.442695
    >>> depth_scale("relu", 2**0.5, 0.0)
    inf
    """

    def xi(c: float) -> float:
        if c == 0:
            return 0.0
        return math.inf if c == 1 else -1.0 / math.log(c)

    c = np.asarray(chi1(act, sigma_w, sigma_b, q0=q0), np.float64)
    return _broadcast(xi, c)


def critical_sigma_w(
    act: Activation,
    sigma_b: Any = 0.0,
    *,
    q0: float = 1.0,
    bracket: tuple[float, float] = (0.05, 20.0),
    tol: float = 1e-10,
) -> Any:
    """The smallest ``sigma_w`` in ``bracket`` with ``chi_1 = 1`` (the edge of chaos), or
    ``nan`` if ``chi_1 - 1`` does not change sign there. Broadcasts over ``sigma_b``, so one
    call gives the critical line of a phase diagram.

    >>> round(critical_sigma_w("relu", 0.0), 9), round(critical_sigma_w("tanh", 0.0), 9)
    (1.414213562, 1.0)
    """
    fn = _fn(act)

    def excess(w: float, b: float) -> float:
        q = _q_star(fn, w, b, float(q0), 1e-13, 200)
        c: float = (
            chi_infinity(act, w) if math.isinf(q) else w**2 * _moments(fn, np.array([q]))[1][0]
        )
        return c - 1.0

    def one(b: float) -> float:
        grid = np.geomspace(bracket[0], bracket[1], 41)
        prev_w, prev_f = float(grid[0]), excess(float(grid[0]), b)
        if prev_f >= 0:
            return prev_w if prev_f == 0 else math.nan
        for w in grid[1:]:
            f = excess(float(w), b)
            if f >= 0:
                g = lambda x: excess(x, b)
                return _brent(g, prev_w, float(w), prev_f, f, tol, 200) if f > 0 else float(w)
            prev_w, prev_f = float(w), f
        return math.nan

    _check_sigmas(1.0, sigma_b)
    return _broadcast(one, sigma_b)


def predict_layers(
    act: Activation, sigma_w: float, sigma_b: float, depth: int, q0: float = 1.0
) -> LayerPrediction:
    """Mean-field prediction for a finite net, layer by layer, before ``q`` reaches ``q*``.

    Layer 0 is the input, treated as a pre-activation with second moment ``q0``; layers
    ``1 .. depth`` follow ``q_l = L(q_{l-1})``. See :class:`LayerPrediction`.

    >>> p = predict_layers("relu", 2.0, 0.0, 3, q0=1.0)
    >>> [np.round(a, 12).tolist() for a in p]
    [[2.0, 4.0, 8.0], [2.0, 2.0, 2.0], [4.0, 2.0, 1.0]]
    """
    _check_sigmas(sigma_w, sigma_b)
    if depth < 1 or not q0 >= 0:
        raise ValueError(f"need depth >= 1 and q0 >= 0, got depth={depth!r}, q0={q0!r}")
    fn = _fn(act)
    qs = np.empty(depth)
    q = float(q0)
    for i in range(depth):
        q = float(sigma_w**2 * _moments(fn, np.array([q]))[0][0] + sigma_b**2)
        qs[i] = q
    c = sigma_w**2 * _moments(fn, qs)[1]
    grad = np.append(np.cumprod(c[-2::-1])[::-1], 1.0) if depth > 1 else np.ones(1)
    return LayerPrediction(q=qs, chi=c, grad=grad)
