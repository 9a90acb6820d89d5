"""Statistics of steps to target: censoring-aware medians and paired ratio intervals over seeds.

Steps to target is time-to-event data. Each run of a configuration (one seed) ends in one of
four outcomes (``outcome``):

- *reached*: the run hit the target at ``steps_to_target``: an event at that time.
- *censored*: it trained to its budget (``steps``) without reaching the target and still
  learned something: it might reach the target later, so its time is right-censored at the
  budget.
- *diverged*: the harness stopped it (non-finite or exploding loss, ``diverged``), whether or
  not it had touched the target before.
- *collapsed*: it did not reach the target and ended no better than chance: final training
  error >= chance error ``1 - 1/num_classes`` minus ``CHANCE_TOL``, or final minibatch loss >=
  ``(1 - CHANCE_TOL) ln(num_classes)`` (the loss of a uniform prediction). The records carry
  no class count; every dataset here has 10 classes, the default.

Diverged and collapsed runs are *failures*: they never reach the target, so they count against
the configuration, never dropped. For the Kaplan-Meier estimate a failure is censored at +inf,
i.e. it stays in the risk set to the end; scipy refuses infinite censoring times, so it is
censored at the largest time of the sample instead, which gives the same curve (no event
happens after it). Censoring a failure at the step it diverged would instead drop it from the
risk set early and make the configuration look faster than it is.

Median steps (``km_median``): the Kaplan-Meier median, the first time the survival curve
``S(t) = P(T > t)`` falls to 0.5; where S stays exactly at 0.5 over an interval, the midpoint of
that interval (R survival's convention: without censoring it is ``np.median``). +inf ("not
reached") when S never falls below 0.5. With every censoring at one common budget, as in a
sweep, it equals ``np.median`` of the steps with censored runs at +inf.

Ratio of two configurations (``median_ratio``): KM median of the numerator / KM median of the
denominator. The true value it estimates is the ratio of the medians of the two population
distributions of steps to target, failures included as +inf: ``m = inf{t: P(T <= t) >= 0.5}``.
Its 95% CI resamples seeds: *paired* when both sides ran the same seeds (a seed index is drawn
once and both sides' runs of that seed go together, so a shared seed effect - data order,
initialisation - cancels), independently per side otherwise. In every resample the statistic
is again the ratio of KM medians. A resampled median that is not reached is replaced by the
median that counts each censored run as reaching the target at its censoring time, a lower
bound of the true one; ``ci_bound`` then says the CI ends are bounds ("lower": the numerator
was replaced in some resample, so the ends can only be too low; "upper": the denominator;
"undetermined": both). ``bound`` says the same of the point estimate.

CI methods: ``percentile`` and ``bca`` (bias-corrected and accelerated, Efron 1987; jackknife
over seeds for the acceleration), both from the same resamples. ``DEFAULT_METHOD`` is the one
whose coverage came closer to 95% in the simulation of tests/bench/test_stats.py (log-normal
times with a shared seed effect, censoring at a budget, a few failures; ``pytest -s`` prints
the coverage table for 3, 5 and 8 seeds).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special
from scipy import stats as sps

__all__ = [
    "CHANCE_TOL",
    "DEFAULT_METHOD",
    "METHODS",
    "OUTCOMES",
    "Sample",
    "bootstrap_ci",
    "km_median",
    "km_median_batch",
    "median_ratio",
    "outcome",
    "ratio_interval",
    "sample",
]

OUTCOMES = ("reached", "censored", "diverged", "collapsed")
CHANCE_TOL = 0.02
METHODS = ("percentile", "bca")
DEFAULT_METHOD = "percentile"
LEVEL = 0.95
# S(t) is a product of fractions: compare it with 0.5 with a little room for rounding.
_EPS = 1e-9


# --------------------------------------------------------------------------- outcomes


def _num(v: Any) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def outcome(record: Mapping[str, Any], num_classes: int = 10) -> str:
    """ "reached", "censored", "diverged" or "collapsed" (see the module docstring)."""
    if record.get("diverged"):
        return "diverged"
    if record.get("steps_to_target") is not None and record.get("reached", True):
        return "reached"
    err = _num(record.get("final_train_error"))
    loss = _num(record.get("final_minibatch_loss"))
    if err is not None and err >= 1 - 1 / num_classes - CHANCE_TOL:
        return "collapsed"
    if loss is not None and loss >= (1 - CHANCE_TOL) * math.log(num_classes):
        return "collapsed"
    return "censored"


@dataclasses.dataclass(frozen=True)
class Sample:
    """Steps to target of one configuration over seeds, as time-to-event data.

    ``time``: steps to target where ``event``, else the censoring time (failures: the largest
    time of the sample); ``outcomes`` one of ``OUTCOMES`` per run; ``seeds`` the runs' seeds.
    """

    time: np.ndarray
    event: np.ndarray
    outcomes: tuple[str, ...]
    seeds: tuple[Any, ...]

    @property
    def failed(self) -> np.ndarray:
        return np.array([o in ("diverged", "collapsed") for o in self.outcomes], bool)

    def count(self, what: str) -> int:
        return sum(o == what for o in self.outcomes)


def sample(records: Sequence[Mapping[str, Any]], num_classes: int = 10) -> Sample:
    """The time-to-event sample of one configuration's runs (one record per seed)."""
    outs = tuple(outcome(r, num_classes) for r in records)
    time = np.full(len(records), np.nan)
    for i, (r, o) in enumerate(zip(records, outs, strict=True)):
        time[i] = float(r["steps_to_target"]) if o == "reached" else _num(r.get("steps")) or np.nan
    event = np.array([o == "reached" for o in outs], bool)
    failed = np.array([o in ("diverged", "collapsed") for o in outs], bool)
    if time.size:
        # Failures (and runs with no recorded budget) stay in the risk set to the end.
        time[failed | np.isnan(time)] = np.nanmax(time, initial=0.0)
    return Sample(time, event, outs, tuple(r.get("seed") for r in records))


# --------------------------------------------------------------------------- Kaplan-Meier


def _median_from_curve(t: np.ndarray, s: np.ndarray) -> float:
    """Median of a survival step function with values ``s`` from times ``t`` on (sorted)."""
    at = np.flatnonzero(s <= 0.5 + _EPS)
    below = np.flatnonzero(s < 0.5 - _EPS)
    if not below.size:
        return math.inf
    return 0.5 * (float(t[at[0]]) + float(t[below[0]]))


def km_median(time: Sequence[float] | np.ndarray, event: Sequence[bool] | np.ndarray) -> float:
    """Kaplan-Meier median of right-censored times (scipy.stats.ecdf); +inf when the survival
    curve never falls below 0.5 ("not reached"), NaN for an empty sample."""
    t = np.asarray(time, np.float64)
    e = np.asarray(event, bool)
    if t.size == 0:
        return math.nan
    if not e.any():
        return math.inf
    data = sps.CensoredData(uncensored=t[e], right=t[~e])
    sf = sps.ecdf(data).sf
    return _median_from_curve(sf.quantiles, sf.probabilities)


def km_median_batch(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """``km_median`` over the last axis of ``(..., n)`` arrays, vectorised for the bootstrap."""
    return _km_medians(time, event)[0]


def _km_medians(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(KM median, median counting censored runs as reaching the target at their censoring
    time: a lower bound of the KM median) over the last axis."""
    time = np.asarray(time, np.float64)
    event = np.asarray(event, bool)
    n = time.shape[-1]
    # Sort by time; at ties events before censorings (a run censored at t was at risk at t).
    if np.all((time >= 0) & (time < 2.0**50) & (time == np.floor(time))):
        # Steps are integers: one sort of the key 2 t + censored, ~3x faster than lexsort.
        key = np.sort(2 * time.astype(np.int64) + ~event, -1)
        t, e = (key >> 1).astype(np.float64), (key & 1) == 0
    else:
        order = np.lexsort((~event, time), axis=-1)
        t = np.take_along_axis(time, order, -1)
        e = np.take_along_axis(event, order, -1)
    at_risk = n - np.arange(n)
    s = np.cumprod(np.where(e, (at_risk - 1) / at_risk, 1.0), axis=-1)
    # First position where S <= 0.5 and where S < 0.5; argmax of an all-False row is 0.
    hit_at, hit_below = s <= 0.5 + _EPS, s < 0.5 - _EPS
    i_at = np.argmax(hit_at, -1)[..., None]
    i_below = np.argmax(hit_below, -1)[..., None]
    lo = np.take_along_axis(t, i_at, -1)[..., 0]
    hi = np.take_along_axis(t, i_below, -1)[..., 0]
    km = np.where(hit_below.any(-1), 0.5 * (lo + hi), np.inf)
    return km, 0.5 * (t[..., (n - 1) // 2] + t[..., n // 2])  # t is sorted: np.median


# --------------------------------------------------------------------------- intervals


def _quantile_sorted(sorted_: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Linear-interpolated quantile (np.quantile's default) of each row of a sorted array at
    its own probability ``p`` (shape ``sorted_.shape[:-1]``)."""
    b = sorted_.shape[-1]
    pos = np.clip(np.asarray(p, np.float64), 0.0, 1.0) * (b - 1)
    i = np.floor(pos).astype(np.int64)
    j = np.minimum(i + 1, b - 1)
    lo = np.take_along_axis(sorted_, i[..., None], -1)[..., 0]
    hi = np.take_along_axis(sorted_, j[..., None], -1)[..., 0]
    frac = pos - i
    with np.errstate(invalid="ignore"):
        return np.where(frac > 0, lo + frac * (hi - lo), lo)


def _bca_probs(
    boot: np.ndarray, theta: np.ndarray, jack: list[np.ndarray], level: float
) -> tuple[np.ndarray, np.ndarray]:
    """BCa's adjusted probabilities (lo, hi) for each row; NaN where BCa is not defined (a
    degenerate bootstrap distribution or jackknife).

    ``jack``: per independently resampled group, its leave-one-out statistics ``(..., n_k)``;
    the acceleration is Efron's multi-sample form (as in scipy.stats.bootstrap), taken on the
    log scale where a ratio's jackknife is symmetric.
    """
    below = (boot < theta[..., None]).sum(-1) + (boot <= theta[..., None]).sum(-1)
    z0 = special.ndtri(below / (2 * boot.shape[-1]))
    num = np.zeros(theta.shape)
    den = np.zeros(theta.shape)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for j in jack:
            j = np.log(j)
            n = j.shape[-1]
            u = (n - 1) * (j.mean(-1, keepdims=True) - j)
            num = num + (u**3).sum(-1) / n**3
            den = den + (u**2).sum(-1) / n**2
        # A constant jackknife (ties are common in medians on an evaluation grid): no skew.
        a = np.where(den > 0, num / (6 * den**1.5), 0.0)
        p = [
            special.ndtr(z0 + (z0 + z) / (1 - a * (z0 + z)))
            for z in special.ndtri([(1 - level) / 2, (1 + level) / 2])
        ]
    ok = np.isfinite(z0) & np.isfinite(a)
    return np.where(ok, p[0], np.nan), np.where(ok, p[1], np.nan)


def _stat(ta, ea, tb, eb):
    """KM median a / KM median b with unreached medians replaced by their lower bounds; also
    whether a / b was replaced."""
    (ma, la), (mb, lb) = _km_medians(ta, ea), _km_medians(tb, eb)
    ra, rb = ~np.isfinite(ma), ~np.isfinite(mb)
    ma, mb = np.where(ra, la, ma), np.where(rb, lb, mb)
    with np.errstate(divide="ignore", invalid="ignore"):
        return ma / mb, ra, rb


def _jackknife(t: np.ndarray) -> np.ndarray:
    """Leave-one-out copies ``(..., n, n-1)`` of the last axis."""
    n = t.shape[-1]
    keep = np.array([[j for j in range(n) if j != i] for i in range(n)], np.int64).reshape(n, n - 1)
    return t[..., keep]


def ratio_interval(
    ta: np.ndarray,
    ea: np.ndarray,
    tb: np.ndarray,
    eb: np.ndarray,
    *,
    paired: bool,
    n_boot: int,
    rng: np.random.Generator,
    level: float = LEVEL,
) -> dict[str, np.ndarray]:
    """Bootstrap intervals of KM median a / KM median b over the last axis (seeds), batched over
    any leading axes (so a coverage simulation runs many experiments at once).

    ``paired``: the i-th runs of a and b share a seed; resample seed indices once for both.
    Returns arrays: ``ratio`` (point estimate, unreached medians replaced), ``percentile`` and
    ``bca`` (``(..., 2)`` interval ends; BCa falls back to the percentile ends where it is not
    defined), ``bca_defined``, ``replaced_a`` / ``replaced_b`` (some resample replaced the
    median of a / b by its lower bound).
    """
    ta, tb = np.asarray(ta, np.float64), np.asarray(tb, np.float64)
    ea, eb = np.asarray(ea, bool), np.asarray(eb, bool)
    na, nb = ta.shape[-1], tb.shape[-1]
    batch = ta.shape[:-1]
    if paired and na != nb:
        raise ValueError(f"paired: the sides have {na} and {nb} runs")
    theta, _, _ = _stat(ta, ea, tb, eb)
    ia = rng.integers(0, na, (*batch, n_boot, na))
    ib = ia if paired else rng.integers(0, nb, (*batch, n_boot, nb))

    def take(x, i):
        return np.take_along_axis(x[..., None, :], i, -1)

    boot, ra, rb = _stat(take(ta, ia), take(ea, ia), take(tb, ib), take(eb, ib))
    boot = np.sort(boot, -1)
    alpha = (1 - level) / 2
    pct = np.stack(
        [
            _quantile_sorted(boot, np.full(batch, alpha)),
            _quantile_sorted(boot, np.full(batch, 1 - alpha)),
        ],
        -1,
    )
    if min(na, nb) > 1:
        if paired:
            jack = [_stat(_jackknife(ta), _jackknife(ea), _jackknife(tb), _jackknife(eb))[0]]
        else:
            ja = _stat(_jackknife(ta), _jackknife(ea), tb[..., None, :], eb[..., None, :])[0]
            jb = _stat(ta[..., None, :], ea[..., None, :], _jackknife(tb), _jackknife(eb))[0]
            jack = [ja, jb]
        p_lo, p_hi = _bca_probs(boot, theta, jack, level)
    else:
        p_lo = p_hi = np.full(batch, np.nan)
    defined = np.isfinite(p_lo) & np.isfinite(p_hi)
    bca = np.stack(
        [
            _quantile_sorted(boot, np.where(defined, p_lo, alpha)),
            _quantile_sorted(boot, np.where(defined, p_hi, 1 - alpha)),
        ],
        -1,
    )
    return {
        "ratio": theta,
        "percentile": pct,
        "bca": bca,
        "bca_defined": defined,
        "replaced_a": ra.any(-1),
        "replaced_b": rb.any(-1),
    }


_BOUND = {
    (False, False): "exact",
    (True, False): "lower",
    (False, True): "upper",
    (True, True): "undetermined",
}


def _float(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def median_ratio(
    num: Sample,
    den: Sample,
    *,
    n_boot: int = 2000,
    rng: np.random.Generator | int = 0,
    method: str = DEFAULT_METHOD,
    level: float = LEVEL,
) -> dict[str, Any]:
    """KM median of ``num`` / KM median of ``den`` with a seed-bootstrap CI.

    Paired resampling when both samples ran the same seeds (each once), independent otherwise.
    Returns ``{ratio, bound, ci, ci_bound, ci_method, ci_by_method, paired, n_num, n_den}``
    (``ci`` is ``ci_by_method[method]``), JSON-safe (None for an undetermined or infinite
    number).
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    rng = np.random.default_rng(rng)
    ma, mb = km_median(num.time, num.event), km_median(den.time, den.event)
    if ma == 0 or mb == 0:  # a median of 0 steps (the target met at init): no ratio
        ratio, bound = math.nan, "undetermined"
    elif math.isfinite(ma) and math.isfinite(mb):
        ratio, bound = ma / mb, "exact"
    elif math.isfinite(mb):
        ratio, bound = float(np.median(num.time)) / mb, "lower"
    elif math.isfinite(ma):
        ratio, bound = ma / float(np.median(den.time)), "upper"
    else:
        ratio, bound = math.nan, "undetermined"
    if not (num.time.size and den.time.size):
        ratio, bound = math.nan, "undetermined"

    seeds_a, seeds_b = list(num.seeds), list(den.seeds)
    paired = (
        len(seeds_a) == len(set(seeds_a)) == len(seeds_b) > 0
        and None not in seeds_a
        and set(seeds_a) == set(seeds_b)
    )
    ci, ci_bound, by_method = None, None, None
    if n_boot > 0 and num.time.size and den.time.size:
        tb, eb = den.time, den.event
        if paired:  # align den's runs with num's seeds
            at = {s: i for i, s in enumerate(seeds_b)}
            idx = np.array([at[s] for s in seeds_a])
            tb, eb = tb[idx], eb[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            res = ratio_interval(
                num.time, num.event, tb, eb, paired=paired, n_boot=n_boot, rng=rng, level=level
            )
        by_method = {m: [_float(v) for v in res[m]] for m in METHODS}
        ci = by_method[method]
        ci_bound = _BOUND[bool(res["replaced_a"]), bool(res["replaced_b"])]
    return {
        "ratio": _float(ratio),
        "bound": bound,
        "ci": ci,
        "ci_bound": ci_bound,
        "ci_method": method,
        "ci_by_method": by_method,
        "paired": paired,
        "n_num": int(num.time.size),
        "n_den": int(den.time.size),
    }


def bootstrap_ci(
    values: Sequence[float | None],
    stat: str = "median",
    n_boot: int = 2000,
    seed: int = 0,
    level: float = LEVEL,
) -> tuple[float, float] | None:
    """Percentile-bootstrap CI of the median (or mean) of one sample over seeds; None (a
    censored run) counts as +inf, so an end of inf means "not determined". Percentiles of the
    median use the lower order statistic (no interpolation towards inf)."""
    v = np.asarray([math.inf if x is None else float(x) for x in values], np.float64)
    if v.size == 0:
        return None
    if stat not in ("median", "mean"):
        raise ValueError(f"stat: expected 'median' or 'mean', got {stat!r}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, (n_boot, v.size))
    f = np.median if stat == "median" else np.mean
    q = [(100 - 100 * level) / 2, (100 + 100 * level) / 2]  # 2.5 and 97.5 exactly
    with np.errstate(invalid="ignore"):
        boot = f(v[idx], axis=1)
        lo, hi = np.percentile(boot, q, method="lower" if stat == "median" else "linear")
    return float(lo), float(hi)
