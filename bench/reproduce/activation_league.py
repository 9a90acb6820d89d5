"""Claim 3: the activation league on accuracy. Ramachandran, Zoph & Le (2017) report the test
accuracy of Swish against ReLU and six baselines; here each of those eight activations trains a
small CNN on Fashion-MNIST for a fixed budget, its lr chosen on a validation split held out of
the training set (tuning seeds), and its held-out test error is measured on 8 fresh seeds. Every
activation is compared with ReLU (and with Swish, as the paper does) by the paired difference
of test error over the shared seeds. Training speed (steps to a training-error target) is the
second table.

Design (the lr choice on accuracy is this module's, not ``bench.protocol``'s, which chooses by
steps to target):

1. tune: a plain sweep of every activation x the lr grid x the tuning seeds; an activation's
   score at an lr is the median over tuning seeds of its final validation error (a diverged run
   counts as +inf). The best lr must be interior to the lrs tried: while it sits on an edge, the
   grid is extended one lr at a time on that side (``bench.protocol``'s ``bracket`` and
   ``next_lr``), at most ``lr_extensions`` times; a bracket still open is flagged.
2. measure: each activation at its chosen lr x the measurement seeds (disjoint from the tuning
   seeds). Its test error on the test split at the end of the budget is the result; a diverged
   run counts as chance error (0.9), never dropped.

The sweeps run under ``<out>/runs/stages``; ``<out>/runs/records.jsonl`` holds every run with its
``stage`` ("tune" or "measure"), and the analysis rebuilds the lr choices from those records.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from bench import config, protocol, results
from bench.reproduce._common import (
    INCONCLUSIVE,
    Context,
    boot_ci,
    clean,
    dir_size,
    fmt_km,
    fmt_ratio,
    km,
    md_table,
    pick,
    ratio,
    save_figure,
    select,
    side,
    slim_curves,
    status,
    write_report,
)

TITLE = "Activation league: test error of a small CNN, lr tuned on a validation split"

CLAIM = """
Ramachandran, Zoph & Le (2017), "Searching for activation functions": Swish (x sigmoid(beta x);
SiLU at beta = 1) matches or outperforms ReLU and the baselines LReLU (0.01), PReLU (init 0.25),
softplus, ELU (1.0), SELU and GELU in test accuracy on CIFAR-10/100 (ResNet-164, WRN 28-10,
DenseNet 100-12, median of 5 runs) and on ImageNet, where it beats ReLU by +0.9% top-1 on Mobile
NASNet-A and +0.6% on Inception-ResNet-v2. The claim tested here is the headline direction on a
small task: **Swish (silu) reaches a lower held-out test error than ReLU** at a fixed training
budget, each at its own lr chosen on validation error. Their networks and budgets are far larger
than anything that fits 2 CPU cores; only the direction and the size of the differences (a
fraction of a percentage point to about one) are comparable, not the error levels.
"""

# The eight activations of Ramachandran et al.'s baseline table (Swish, ReLU and its six
# baselines) with their parameters: LReLU 0.01, PReLU init 0.25, ELU alpha 1 are the registry's
# defaults. tanh/sigmoid and the later mish are left out: the paper did not compare them.
ACTIVATIONS = ("relu", "leaky_relu", "prelu", "softplus", "elu", "selu", "gelu", "silu")
REFERENCE = "relu"
SWISH = "silu"
CHANCE_ERROR = 0.9  # a diverged run's held-out error: chance on 10 classes
LEVEL = 0.95
N_BOOT = 4000
# Keys of the league's spec that are not sweep keys of a stage (bench.config).
LEAGUE_KEYS = ("tuning_seeds", "lr_extensions", "lr_factor", "protocol")
TUNE_TEST = 16  # test images the tuning runs evaluate (never read)
FASHION_TEST = 10_000  # images in Fashion-MNIST's test split


def spec(size: str, data_dir: str | None = None) -> dict[str, Any]:
    """The league as data: the sweep keys shared by every stage, the lr grid to start the search
    from (``lr``), the measurement seeds (``seed``), ``tuning_seeds`` and ``lr_extensions``.

    Default size, sized on the 2-core machine (2026-11-30): one step of the 8-8-16 CNN with the
    non-overlapping 2x2 max-pool (XLA CPU runs it ~3x faster than the overlapping 3/2 one,
    FINDINGS.md) at batch 64 cost 21 ms of CPU per configuration, and the held-out errors of a
    run (2 x (validation + test)) ~0.16 ms of CPU per image. 8 activations x (4 lrs x 2 tuning
    seeds + 8 seeds) x 300 steps, 2000 validation images, the 10,000 test images for the
    measurement runs and 16 programs to compile: the first run took 1806 s of CPU (~15 minutes
    on 2 quiet cores; 40 minutes of wall time shared with four other jobs); a measurement group
    (8 runs) took 52 s plus a 5 s compile with the machine nearly quiet.
    """
    del data_dir  # Fashion-MNIST comes from the Debian package unless --data-dir says otherwise
    acts = pick(size, tiny=(REFERENCE, SWISH), default=ACTIVATIONS, full=ACTIVATIONS)
    return {
        "experiment": "activation_league",
        "description": "Ramachandran et al. 2017's activations, CNN test error at a fixed budget",
        "dataset": "fashion-mnist",
        "data": pick(size, tiny={"limit_train": 640, "limit_test": TUNE_TEST}, default={}, full={}),
        "model": "cnn",
        "channels": pick(size, tiny=[4, 4, 8], default=[8, 8, 16], full=[32, 32, 64]),
        "pool": pick(size, tiny=2, default=2, full=3),
        "activation": list(acts),
        "init": "he_normal",
        "optimizer": "momentum",
        "momentum": 0.9,
        "batch_size": pick(size, tiny=32, default=64, full=128),
        "steps": pick(size, tiny=20, default=300, full=4000),
        "eval_every": pick(size, tiny=10, default=25, full=100),
        "eval_size": pick(size, tiny=64, default=256, full=5000),
        "val_size": pick(size, tiny=128, default=2000, full=5000),
        # training-speed table only: steps until the error on the eval subset is <= target
        "target": pick(size, tiny=0.85, default=0.25, full=0.1),
        "lr": pick(
            size,
            tiny=[0.05, 0.1],
            default=[0.01, 0.02, 0.04, 0.08],
            full=[0.01, 0.02, 0.04, 0.08],
        ),
        "tuning_seeds": pick(size, tiny=[1000], default=[1000, 1001], full=[1000, 1001, 1002]),
        "lr_extensions": pick(size, tiny=1, default=3, full=4),
        "lr_factor": 0.0,  # extensions keep the grid's spacing (x2)
        "seed": pick(size, tiny=[0, 1], default=list(range(8)), full=list(range(8))),
        "strategy": "auto",
    }


def stage_spec(
    sp: Mapping[str, Any],
    stage: str,
    acts: Sequence[str],
    lrs: Sequence[float],
    seeds: Sequence[int],
) -> dict[str, Any]:
    """A plain sweep of ``acts`` x ``lrs`` x ``seeds`` (experiment ``<experiment>-<stage>``)."""
    out = {k: v for k, v in sp.items() if k not in LEAGUE_KEYS}
    if stage == "tune":
        # The harness always measures the test split; the tuning runs get a token one, since
        # their test error must never be read (and 10,000 images per run would cost ~40%).
        out["data"] = {**sp["data"], "limit_test": TUNE_TEST}
    out.update(
        experiment=f"{sp['experiment']}-{stage}",
        activation=list(acts),
        lr=[float(v) for v in lrs],
        seed=[int(v) for v in seeds],
    )
    return out


# --------------------------------------------------------------------------- lr choice (pure)


def held_out(r: Mapping[str, Any], key: str) -> float:
    """A run's held-out error (``val_error`` or ``test_error``); a diverged run (no finite
    error) at chance."""
    v = r.get(key)
    if r.get("diverged") or v is None or not math.isfinite(float(v)):
        return CHANCE_ERROR
    return float(v)


def val_score(records: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """(median final validation error, median final training error) over one lr's tuning runs:
    smaller is better, in that order. A diverged run counts as +inf in both, so an lr at which
    half the tuning seeds diverge is never chosen over one where none does."""

    def med(key: str) -> float:
        v = [
            math.inf if r.get("diverged") or r.get(key) is None else float(r[key]) for r in records
        ]
        return float(np.median(v)) if v else math.inf

    return med("val_error"), med("final_train_error")


def _extensions(lrs: Sequence[float], grid: Sequence[float]) -> dict[str, int]:
    return {
        "above": sum(lr > max(grid) for lr in lrs),
        "below": sum(lr < min(grid) for lr in lrs),
    }


def choose(
    tune_records: Sequence[Mapping[str, Any]], sp: Mapping[str, Any]
) -> tuple[protocol.Bracket, tuple[str, float] | None]:
    """One activation's tuning runs -> (its lr bracket by ``val_score``, the next lr to try or
    None). The search state is the set of lrs already run, so a rerun resumes it exactly."""
    by_lr: dict[float, list[Mapping[str, Any]]] = {}
    for r in tune_records:
        by_lr.setdefault(float(r["lr"]), []).append(r)
    b = protocol.bracket({lr: val_score(rs) for lr, rs in by_lr.items()})
    below, above = protocol.grid_factors(sp["lr"], sp["lr_factor"])
    used = _extensions(b.lrs, sp["lr"])
    return b, protocol.next_lr(b, below, above, used, sp["lr_extensions"])


# --------------------------------------------------------------------------- statistics (pure)


def expanded_level(n: int, level: float = LEVEL) -> float:
    """The percentile level that makes a bootstrap CI of a mean from n values as wide as the
    Student t interval (Hesterberg 2015, "expanded percentile"): the plain percentile interval
    uses the 1/n variance and normal quantiles, and covers ~91% instead of 95% at n = 8."""
    from scipy.stats import norm, t

    if n < 2:
        return level
    z = math.sqrt(n / (n - 1)) * t.ppf(0.5 + level / 2, n - 1)
    return float(2 * norm.cdf(z) - 1)


def paired_diff(
    a: Mapping[int, float], b: Mapping[int, float], n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, Any] | None:
    """Mean over the seeds both ran of a[seed] - b[seed], with an expanded-percentile
    bootstrap 95% CI that resamples seeds (paired: a seed's two values go together, so what
    the seed fixes - initialisation key, minibatch order - cancels)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    d = np.array([a[s] - b[s] for s in seeds], np.float64)
    out: dict[str, Any] = {"mean": float(d.mean()), "n": len(seeds), "ci": None}
    if len(seeds) >= 2:
        lv = expanded_level(len(seeds))
        idx = np.random.default_rng(seed).integers(0, d.size, (n_boot, d.size))
        lo, hi = np.percentile(d[idx].mean(1), [50 * (1 - lv), 50 * (1 + lv)])
        out["ci"] = [float(lo), float(hi)]
    return out


def rank_ranges(means: Mapping[str, float], diffs: Mapping[tuple[str, str], Any]) -> dict:
    """Rank of each activation by mean test error, as the range of places it could hold: x is
    surely ahead of y when the CI of the paired difference x - y lies below 0. Its best place is
    1 + the number surely ahead of it, its worst n - the number surely behind it."""
    names = sorted(means, key=lambda a: (means[a], a))
    out = {}
    for a in names:
        ahead = behind = 0
        for b in names:
            if b == a:
                continue
            sg = side((diffs.get((a, b)) or {}).get("ci"), 0.0)
            ahead += sg == 1  # a - b surely > 0: b is ahead
            behind += sg == -1
        out[a] = {"rank": names.index(a) + 1, "best": 1 + ahead, "worst": len(names) - behind}
    return out


def fmt_rank(r: Mapping[str, int]) -> str:
    return str(r["best"]) if r["best"] == r["worst"] else f"{r['best']}-{r['worst']}"


def analyse(records: list[dict[str, Any]], sp: dict[str, Any]) -> dict[str, Any]:
    """Every run (``stage`` "tune" or "measure") -> the league: per activation its chosen lr
    and bracket, test error over the measurement seeds, the paired difference to ReLU and to
    Swish, the rank range, and training speed (KM median steps to target, x / relu)."""
    tune = [r for r in records if r["stage"] == "tune"]
    meas = [r for r in records if r["stage"] == "measure"]
    acts = [a for a in sp["activation"] if select(meas, activation=a)]
    test = {
        a: {r["seed"]: held_out(r, "test_error") for r in select(meas, activation=a)} for a in acts
    }
    diffs = {(a, b): paired_diff(test[a], test[b]) for a in acts for b in acts if a != b}
    means = {a: float(np.mean(list(test[a].values()))) for a in acts}
    ranks = rank_ranges(means, diffs)
    rows = {}
    for a in acts:
        rs = select(meas, activation=a)
        b = choose(select(tune, activation=a), sp)[0]
        lrs = {float(r["lr"]) for r in rs}
        if lrs != {b.best}:
            raise ValueError(f"lr: {a} was measured at {sorted(lrs)}, the tuning chose {b.best}")
        err = list(test[a].values())
        rows[a] = {
            "activation": a,
            "lr": b.best,
            "bracket": {
                "tried": list(b.lrs),
                "closed": b.closed,
                "open_side": [
                    s for s, c in (("below", b.closed_below), ("above", b.closed_above)) if not c
                ],
                "val_error": {
                    f"{lr:g}": val_score(select(tune, activation=a, lr=lr))[0] for lr in b.lrs
                },
            },
            "seeds": sorted(test[a]),
            "test_error": err,
            "test_error_median": float(np.median(err)),
            "test_error_ci": boot_ci(err, "median"),
            "test_error_mean": means[a],
            "val_error_median": float(np.median([held_out(r, "val_error") for r in rs])),
            # failed: diverged (test error at chance) or collapsed to chance (bench.stats)
            "failed": km(rs)["failed"],
            "diverged": sum(bool(r.get("diverged")) for r in rs),
            "vs_relu": diffs.get((a, REFERENCE)),
            "swish_minus": diffs.get((SWISH, a)),
            **ranks[a],
            "speed": km(rs),
            "speed_vs_relu": ratio(rs, select(meas, activation=REFERENCE))
            if a != REFERENCE
            else None,
        }
    n_meas = len(meas)
    outcomes = [km(select(meas, activation=a)) for a in acts]
    return {
        "steps": sp["steps"],
        "target": sp["target"],
        "activations": rows,
        "ranking": [rows[a] for a in sorted(acts, key=lambda a: ranks[a]["rank"])],
        "protocol": {
            "design": "tuned on validation error",
            "statistical_unit": "seed (measurement seeds; paired across activations)",
            "tuning_seeds": list(sp["tuning_seeds"]),
            "measurement_seeds": list(sp["seed"]),
            "lr_grid": list(sp["lr"]),
            "lr_extensions": sp["lr_extensions"],
            "selection": "median final validation error over the tuning seeds (diverged: +inf)",
            "estimator": "mean test error over the measurement seeds; paired mean differences",
            "ci_method": (
                "seed bootstrap: expanded percentile (t-matched) for paired mean differences, "
                "percentile for medians"
            ),
            "n_measured": n_meas,
            "n_censored": sum(o["censored"] for o in outcomes),
            "n_failed": sum(rows[a]["failed"] for a in acts),
            "brackets": [
                {
                    "setting": a,
                    "lr": rows[a]["lr"],
                    "closed": rows[a]["bracket"]["closed"],
                    "open_side": rows[a]["bracket"]["open_side"],
                    "tried": rows[a]["bracket"]["tried"],
                }
                for a in acts
            ],
        },
    }


def verdict(s: Mapping[str, Any]) -> tuple[str, str]:
    """Held when the 95% CI of the paired difference silu - relu in test error lies below 0,
    not held when it lies above 0, inconclusive when it contains 0 (no equivalence margin is
    claimed, so "matches" cannot be told from "worse by a little"). The baselines are described
    in words: silu - x for each, as the paper compares them."""
    rows = s["activations"]
    d = (rows.get(SWISH) or {}).get("vs_relu")
    if not d or d.get("ci") is None:
        return INCONCLUSIVE, "silu - relu could not be measured (a side missing or one seed)."
    sg = side(d["ci"], 0.0)
    head = {
        -1: "silu's test error is lower than relu's (CI below 0)",
        1: "silu's test error is higher than relu's (CI above 0)",
        0: "the CI contains 0: no measured difference",
    }[sg]
    words = []
    for a, x in rows.items():
        if a in (SWISH, REFERENCE) or not x.get("swish_minus") or x["swish_minus"]["ci"] is None:
            continue
        g = side(x["swish_minus"]["ci"], 0.0)
        word = {-1: "silu better", 1: "silu worse", 0: "no measured difference"}[g]
        words.append(f"{a} {fmt_pp(x['swish_minus'])} ({word})")
    text = (
        f"Test error silu - relu = {fmt_pp(d)} (mean paired difference over {d['n']} seeds, "
        f"95% CI): {head}. Silu - baseline: {'; '.join(words) or 'none measured'}."
    )
    open_ = [
        f"{a} ({'/'.join(x['bracket']['open_side'])})"
        for a, x in rows.items()
        if "bracket" in x and not x["bracket"]["closed"]
    ]
    if open_:  # its best lr may lie outside the lrs tried: its error may be overstated
        text += f" lr bracket left open (best lr still on an edge): {', '.join(open_)}."
    return status(sg, -1), text


def fmt_pp(d: Mapping[str, Any] | None) -> str:
    """A paired difference of error rates in percentage points: '+0.31 pp [-0.10, +0.72]'."""
    if not d:
        return "-"
    ci = d.get("ci")
    tail = f" [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]" if ci else ""
    return f"{100 * d['mean']:+.2f} pp{tail}"


def fmt_pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def fmt_pct_ci(ci: Sequence[float] | None) -> str:
    return "-" if not ci else f"[{fmt_pct(ci[0])}, {fmt_pct(ci[1])}]"


# --------------------------------------------------------------------------- running


def run_stage(ctx: Context, stage_sp: dict[str, Any], stage: str) -> list[dict[str, Any]]:
    """Run (or resume) one stage sweep under ``<out>/runs/stages``; its records, with ``stage``.
    The curves files keep the evaluation curves only (the per-step arrays are not used)."""
    from bench.sweep import run_sweep

    if ctx.data_dir:
        stage_sp = {"data_dir": ctx.data_dir, **stage_sp}
    run_dir = run_sweep(
        config.parse(stage_sp),
        ctx.out_dir / "runs" / "stages",
        progress=sys.stderr.isatty(),
        report=False,
    )
    slim_curves(run_dir)
    return [{**r, "stage": stage} for r in results.read_records(run_dir)]


def search(
    sp: dict[str, Any], sweep: Callable[[dict[str, Any], str], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Tune every activation's lr on validation error, then measure it: every run's record.
    ``sweep(stage_spec, stage) -> records`` runs one plain sweep."""
    acts, tuning = sp["activation"], sp["tuning_seeds"]
    tuned = sweep(stage_spec(sp, "tune", acts, sp["lr"], tuning), "tune")
    chosen: dict[float, list[str]] = {}
    for a in acts:
        mine = select(tuned, activation=a)
        while (nxt := choose(mine, sp)[1]) is not None:
            print(f"tune {a}: best lr on the edge, trying {nxt[1]:g}", file=sys.stderr)
            new = sweep(stage_spec(sp, "tune", [a], [nxt[1]], tuning), "tune")
            mine, tuned = mine + new, tuned + new
        chosen.setdefault(choose(mine, sp)[0].best, []).append(a)
    measured = []
    for lr, group in chosen.items():  # activations that chose the same lr share a sweep
        measured += sweep(stage_spec(sp, "measure", group, [lr], sp["seed"]), "measure")
    return tuned + measured


# --------------------------------------------------------------------------- figures


def _plot_league(ctx: Context, s: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    rows = s["ranking"]
    ys = np.arange(len(rows))
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 0.4 * len(rows) + 2.0), sharey=True)
    for y, r in zip(ys, rows, strict=True):
        m, (lo, hi) = 100 * r["test_error_median"], (100 * v for v in r["test_error_ci"])
        ax0.errorbar(m, y, xerr=[[m - lo], [hi - m]], fmt="o", color="tab:blue", capsize=3)
        seeds = 100 * np.asarray(r["test_error"])
        ax0.plot(seeds, np.full(seeds.size, y + 0.2), ".", color="0.5", ms=4)
        d = r["vs_relu"]
        if d and d["ci"]:
            m, lo, hi = 100 * d["mean"], 100 * d["ci"][0], 100 * d["ci"][1]
            color = "tab:green" if hi < 0 else "tab:red" if lo > 0 else "tab:gray"
            ax1.errorbar(m, y, xerr=[[m - lo], [hi - m]], fmt="o", color=color, capsize=3)
    ax0.set_yticks(ys, [f"{r['activation']} (rank {fmt_rank(r)})" for r in rows])
    ax0.invert_yaxis()
    ax0.set_xlabel(f"test error at step {s['steps']} (%): median, 95% CI; dots: seeds")
    ax1.axvline(0, color="k", lw=1)
    ax1.set_xlabel("test error - relu's, same seed (percentage points): mean, 95% CI")
    for ax in (ax0, ax1):
        ax.grid(alpha=0.3)
    fig.suptitle("Activation league on held-out test error (lr tuned on validation error)")
    fig.tight_layout()
    return save_figure(ctx, fig, "league.png")


def _plot_tuning(ctx: Context, s: dict[str, Any], tune: list[dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    rows = s["activations"]
    # The interesting range is near the chosen lrs; diverged (+inf) or collapsed lrs would
    # squash it, so the axis stops at 2x the worst chosen error and they sit on its top edge.
    top = 200 * max(r["bracket"]["val_error"][f"{r['lr']:g}"] for r in rows.values())
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for a, r in rows.items():
        lrs = r["bracket"]["tried"]
        med = np.minimum([100 * r["bracket"]["val_error"][f"{lr:g}"] for lr in lrs], top)
        (line,) = ax.plot(lrs, med, "-", label=a)
        c = line.get_color()
        pts = select(tune, activation=a)
        y = np.array([100 * held_out(p, "val_error") for p in pts])
        x = np.array([p["lr"] for p in pts])
        off = y >= top
        ax.plot(x[~off], y[~off], ".", color=c, ms=4)
        ax.plot(x[off], np.full(off.sum(), top), "x", color=c, ms=6)
        ax.plot([r["lr"]], [100 * r["bracket"]["val_error"][f"{r['lr']:g}"]], "*", ms=12, color=c)
    ax.set_xscale("log")
    ax.set_ylim(None, top * 1.02)
    ax.set_xlabel("learning rate (SGD momentum 0.9)")
    ax.set_ylabel(f"validation error at step {s['steps']} (%)")
    ax.set_title(
        "lr search on the tuning seeds: median (line), seeds (dots), chosen (star);\n"
        f"x / top edge: diverged or above {top:.0f}%",
        fontsize=10,
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return save_figure(ctx, fig, "tuning.png")


# --------------------------------------------------------------------------- report


def _surely(rows: Mapping[str, Any], key: str, sign: int) -> list[str]:
    """The activations whose paired difference ``key`` has its CI wholly on ``sign``'s side."""
    return [a for a, x in rows.items() if x.get(key) and side(x[key]["ci"], 0.0) == sign]


def answer(s: Mapping[str, Any], st: str) -> str:
    """The report's opening paragraph, from the summary."""
    rows = s["activations"]
    d = rows[SWISH]["vs_relu"] if SWISH in rows else None
    best = s["ranking"][0]
    means = [r["test_error_mean"] for r in rows.values()]

    def names(key: str, sign: int) -> str:
        return ", ".join(_surely(rows, key, sign)) or "none"

    if d and d["ci"]:
        direction = (
            "lower than relu's, the published direction"
            if d["mean"] < 0
            else "higher than relu's, against the published direction"
        )
        direction += (
            ", and the CI excludes 0"
            if side(d["ci"], 0.0)
            else f", but the CI reaches {100 * d['ci'][1 if d['mean'] < 0 else 0]:+.2f} pp"
        )
    else:
        direction = "not measured"
    return (
        f"**{st.capitalize()}.** After {s['steps']} steps, with each activation at the lr that "
        f"minimised validation error, silu's test error minus relu's on the same seeds is "
        f"{fmt_pp(d)} (95% CI): {direction}. Ramachandran et al. report Swish ahead of relu by "
        f"0.6-0.9 points of top-1 accuracy on ImageNet, and ahead of or level with every "
        f"baseline; here silu is surely better than {names('swish_minus', -1)} and surely worse "
        f"than {names('swish_minus', 1)}. "
        f"Mean test errors span {100 * (max(means) - min(means)):.2f} percentage points across "
        f"the {len(rows)} activations, lowest {best['activation']} "
        f"({fmt_pct(best['test_error_mean'])}); surely below relu's: {names('vs_relu', -1)}; "
        f"surely above: {names('vs_relu', 1)}."
    )


def _speed_table(s: Mapping[str, Any]) -> str:
    budget = s["steps"]
    return md_table(
        ["activation", "KM median steps to target [95% CI]", "reached", "x / relu [95% CI]"],
        [
            [
                r["activation"],
                fmt_km(r["speed"], budget),
                f"{r['speed']['reached']}/{r['speed']['n']} ({r['speed']['failed']} failed)",
                "1 (reference)" if r["activation"] == REFERENCE else fmt_ratio(r["speed_vs_relu"]),
            ]
            for r in sorted(s["ranking"], key=lambda r: r["speed"]["median"] or math.inf)
        ],
    )


def report(ctx: Context, sp: dict[str, Any], s: dict[str, Any], figs: list[str]) -> dict[str, Any]:
    """REPORT.md and summary.json from the summary (every number in the text comes from it)."""
    rows = s["ranking"]
    p = s["protocol"]
    league = md_table(
        [
            "rank",
            "activation",
            "chosen lr",
            "test error, median [95% CI]",
            "mean",
            "x - relu, same seeds [95% CI]",
            "failed",
        ],
        [
            [
                fmt_rank(r),
                r["activation"],
                f"{r['lr']:g}"
                + (
                    ""
                    if r["bracket"]["closed"]
                    else " (OPEN " + "/".join(r["bracket"]["open_side"]) + ")"
                ),
                f"{fmt_pct(r['test_error_median'])} {fmt_pct_ci(r['test_error_ci'])}",
                fmt_pct(r["test_error_mean"]),
                "0 (reference)" if r["activation"] == REFERENCE else fmt_pp(r["vs_relu"]),
                f"{r['failed']}/{len(r['seeds'])}",
            ]
            for r in rows
        ],
    )
    vs_swish = md_table(
        ["baseline x", "silu - x, same seeds [95% CI]", "measured", "Ramachandran et al."],
        [
            [
                r["activation"],
                fmt_pp(r["swish_minus"]),
                {-1: "silu better", 1: "silu worse", 0: "no measured difference"}[
                    side((r["swish_minus"] or {}).get("ci"), 0.0)
                ],
                "Swish better (ImageNet +0.6 to +0.9 pp top-1)"
                if r["activation"] == REFERENCE
                else "Swish matches or beats it",
            ]
            for r in rows
            if r["activation"] != SWISH
        ],
    )
    tuning = md_table(
        ["activation", "lrs tried", "median val error at each lr", "chosen", "bracket"],
        [
            [
                r["activation"],
                ", ".join(f"{lr:g}" for lr in r["bracket"]["tried"]),
                ", ".join(
                    fmt_pct(v) if math.isfinite(v) else "diverged"
                    for v in r["bracket"]["val_error"].values()
                ),
                f"{r['lr']:g}",
                "closed"
                if r["bracket"]["closed"]
                else "OPEN " + "/".join(r["bracket"]["open_side"]),
            ]
            for r in rows
        ],
    )
    n_test = sp["data"].get("limit_test") or FASHION_TEST
    data_note = ", ".join(f"{k} {v}" for k, v in sp["data"].items()) or (
        "all 60,000 training and 10,000 test images"
    )
    setup = f"""
Data: Fashion-MNIST ({data_note}); the last {sp["val_size"]} training images are held out as the
validation split (never trained on). Model: CNN, {len(sp["channels"])} x (conv 5x5 SAME ->
activation -> max-pool {sp["pool"]}/2) with channels {sp["channels"]}, then a linear head; He
normal init; SGD with momentum {sp["momentum"]}, batch {sp["batch_size"]}, {sp["steps"]} steps
(a fixed budget, no schedule). Activations: {", ".join(sp["activation"])} with the paper's
parameters (leaky_relu 0.01, prelu a trained slope per layer from 0.25, elu alpha 1, silu
beta 1, gelu tanh approximation).

lr choice: each activation's lr is chosen on the tuning seeds {p["tuning_seeds"]} by the
{p["selection"]}, starting from the grid {p["lr_grid"]} and extended one lr at a time (at most
{p["lr_extensions"]} per side) while the best lr is on the grid's edge. Measurement: the chosen
lr on seeds {p["measurement_seeds"]} (disjoint from the tuning seeds; a seed fixes the
initialisation and the minibatch order, and every activation ran the same seeds). Result: the
error on the {n_test} test images at step {sp["steps"]}; a diverged run counts as chance (90%);
the tuning runs evaluate only {TUNE_TEST} test images, whose error is never read.
Estimates: {p["estimator"]}; CIs: {p["ci_method"]}. A rank range "a-b" lists the places an
activation could hold given the paired CIs against every other activation (a tie where a CI
contains 0). Measurement runs: {p["n_measured"]}, of which {p["n_failed"]} failed (diverged or
collapsed to chance; counted, never dropped).
"""
    st, head = verdict(s)
    results_md = (
        "### Test error at a fixed budget\n\n"
        + league
        + "\n\n### Swish against each activation, as Ramachandran et al. compare them\n\n"
        + vs_swish
        + "\n\n### lr search (validation error, tuning seeds)\n\n"
        + tuning
        + f"\n\n### Training speed (second table)\n\nSteps until the error on the first "
        f"{sp['eval_size']} training images (measured every {sp['eval_every']} steps) is at or "
        f"below {sp['target']:g}, at the lr chosen above (for validation error, not for "
        "speed); Kaplan-Meier median over the measurement seeds, runs that never reach it "
        "censored at the budget; x / relu paired seed-bootstrap ratio.\n\n" + _speed_table(s)
    )
    verdict_md = f"""
**{st.capitalize()}.** {head}

Compared with Ramachandran et al.: their gains of Swish over ReLU are 0.6-0.9 points of top-1
accuracy for ImageNet-scale networks trained to convergence; here a small CNN trains for
{sp["steps"]} steps of batch {sp["batch_size"]} on Fashion-MNIST, so differences of that size
are what the CIs must resolve. A CI that contains 0 says the difference is smaller than this
experiment can see, not that the activations are equal. Conditions: one task, one small
architecture, one budget, SGD with momentum and no lr schedule, He init for every activation.
"""
    data = {**s, "status": st, "results_bytes": dir_size(ctx.out_dir)}
    return write_report(
        ctx,
        title=TITLE,
        claim=CLAIM,
        setup=setup,
        results_md=results_md,
        verdict=verdict_md,
        figures=figs,
        config=sp,
        data=clean(data),
        answer=answer(s, st),
    )


def run(ctx: Context) -> dict[str, Any]:
    sp = spec(ctx.size, ctx.data_dir)
    records = search(sp, lambda stage_sp, stage: run_stage(ctx, stage_sp, stage))
    root = ctx.out_dir / "runs"
    results.atomic_write_text(
        root / "records.jsonl", "".join(results.to_json(r, sort_keys=True) + "\n" for r in records)
    )
    s = analyse(records, sp)
    s["run_dir"] = str(root)
    tune = [r for r in records if r["stage"] == "tune"]
    figs = [_plot_league(ctx, s), _plot_tuning(ctx, s, tune)]
    return report(ctx, sp, s, figs)
