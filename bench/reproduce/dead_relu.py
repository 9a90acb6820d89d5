"""Claim 7 (the seed's slides): large learning rates kill ReLUs; a small positive bias init
(0.01) keeps them alive.

Measured where ReLUs actually die: momentum SGD at learning rates from safe through collapsing
to diverging, in two networks on one Fashion-MNIST training subset of ``n_train`` examples:

- the CNN of the relu-vs-tanh claim (cuda-convnet's layers-18pct topology, channels scaled to
  the budget), whose ReLU runs at lr >= 0.1 there ended at a constant output (loss ln 10)
  without diverging;
- a deep ReLU MLP (784 -> width x depth -> 10), which carries the full grid: init {LeCun-normal,
  Gaussian std 0.01} x bias init {0, 0.01, 0.1, 0.3} x lr x seed. The CNN, 20x dearer per step
  on a CPU, runs the LeCun init and the biases {0, 0.01, 0.1} at the default size and the full
  grid with ``--full``.

Std 0.01 is the init the folklore comes from: with it the pre-activations are O(0.01) or less,
so a bias of 0.01 is of their size; under LeCun init they are O(1) and such a bias is 1% of
them. The summary records the pre-activation RMS of every layer at init to show which regime a
cell is in.

Outcomes of every run (none is dropped): *diverged* (the harness stopped it: loss not finite or
above ``loss_bound``); *collapsed* (it ended at chance: training error or loss at a constant
prediction's, ``bench.stats.outcome`` applied to the end state whether or not the target was
reached on the way); *died* (not diverged, and some hidden layer ended with at least
``DEAD_LEVEL`` of its units dead). A unit is dead when its ReLU derivative is 0 on every
example of the whole training set (``bench.diagnostics``' ``dead_fraction`` measured with
``diag_size = eval_size = n_train`` at the end; a CNN unit is a channel, dead at every position
of every image). The dead fraction of a diverged run is not measured (its last parameters are
those of the step that blew up), so diverged runs are counted as diverged, never averaged.

Statistics (the seed is the unit; runs differing only in lr or bias init share the seed, hence
the initial weights and the minibatches): per (model, init, bias, lr) cell P(died),
P(collapse), P(divergence) with Clopper-Pearson 95% CIs over the seeds; per layer the median
dead fraction over the non-diverged seeds with a seed-bootstrap CI; Kaplan-Meier steps to the
training-error target (failures never reach it). **Death sets in** at the smallest lr of the
grid where at least half the runs died; its uncertainty is the *onset range*, from the smallest
lr whose CI of P(died) reaches 1/2 (below it death of half the runs is excluded) to the
smallest lr whose CI lies above 1/2 (from it on it is established). **Does a bias move it**:
per seed, the grid index of the first lr at which that seed's run died (one past the grid when
it never did), bias b against bias 0 on the same seed; the mean shift over seeds in grid steps
with a seed-bootstrap 95% CI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bench import results, stats
from bench.reproduce._common import (
    HELD,
    INCONCLUSIVE,
    NOT_HELD,
    Context,
    boot_ci,
    clean,
    combine,
    dir_size,
    fmt_interval,
    fmt_km,
    fmt_num,
    grid_block,
    km,
    md_table,
    pick,
    proportion_ci,
    save_figure,
    slim_curves,
    sweep,
    write_report,
)

TITLE = "Dead ReLUs where they die: learning rate, bias init and init scale"

MODELS = ("cnn", "mlp")
INITS = ("lecun_normal", "gaussian")
BIASES = (0.0, 0.01, 0.1, 0.3)
CLAIM_BIAS = 0.01  # the slides' "small positive bias"
DEAD_LEVEL = 0.5  # a run died when some hidden layer ends with >= this fraction of units dead
ONSET_P = 0.5  # death sets in where at least this share of the runs died
INIT_STD = 0.01  # the Gaussian init's std (every weight layer)

CLAIM = """
The seed's slides (no source numbers): "large learning rates kill ReLUs" (a unit whose
pre-activation is negative on every input gets no gradient and never recovers), and "a small
positive bias init (0.01) reduces dead units" (it starts every unit on its active side). The
bias advice dates from nets initialised with Gaussian weights of std 0.01: Krizhevsky et al.
(2012, Sec. 5) drew every weight from N(0, 0.01^2) and set the biases of several layers to 1,
which "accelerates the early stages of learning by providing the ReLUs with positive inputs".
In a narrow net such an init leaves pre-activations as small as the bias.
"""


# --------------------------------------------------------------------------- the sweeps


def spec(size: str, model: str, data_dir: str | None = None) -> dict[str, Any]:
    """One model's sweep (``model`` "cnn" or "mlp"): init x bias init x lr x seed, momentum
    SGD, diagnostics measured at init and at the end on the whole training subset."""
    if model not in MODELS:
        raise ValueError(f"model: expected one of {MODELS}, got {model!r}")
    n_train = pick(size, tiny=64, default=512, full=4096)
    cnn = model == "cnn"
    steps = (
        pick(size, tiny=10, default=150, full=1000)
        if cnn
        else pick(size, tiny=10, default=300, full=2000)
    )
    every = pick(size, tiny=5, default=25, full=50)
    sp: dict[str, Any] = {
        "experiment": f"dead-relu-{model}",
        "dataset": "fashion-mnist",
        "data": {"limit_train": n_train, "limit_test": pick(size, tiny=64, default=256, full=1000)},
        "activation": "relu",
        "model": model,
        "optimizer": "momentum",
        "momentum": 0.9,
        "batch_size": pick(size, tiny=16, default=64, full=128),
        "steps": steps,
        "eval_every": every,
        # the whole training subset: training error and dead units are counted on all of it
        "eval_size": n_train,
        "diagnostics": True,
        "diag_every": steps,  # at init and at the end (the CNN's measurement is the dear part)
        "diag_size": n_train,
        "init_std": INIT_STD,
        "target": pick(size, tiny=0.8, default=0.3, full=0.2),
        "seed": list(range(pick(size, tiny=2, default=10, full=20))),
    }
    if data_dir:
        sp["data_dir"] = data_dir
    if cnn:
        sp |= {
            "architecture": "cifar_18pct",
            "pool": 3,
            "channels": pick(size, tiny=[2, 2, 4], default=[8, 8, 16], full=[32, 32, 64]),
            "init": pick(size, tiny=["lecun_normal"], default=["lecun_normal"], full=list(INITS)),
            "bias_init": pick(size, tiny=[0.0, 0.1], default=[0.0, 0.01, 0.1], full=list(BIASES)),
            "lr": pick(
                size,
                tiny=[0.03, 1.0],
                default=[0.03, 0.1, 0.3, 1.0],
                full=[0.01, 0.03, 0.1, 0.3, 1.0],
            ),
        }
    else:
        sp |= {
            "depth": pick(size, tiny=2, default=6, full=8),
            "width": pick(size, tiny=8, default=64, full=256),
            "init": list(INITS),
            "bias_init": pick(size, tiny=[0.0, 0.01], default=list(BIASES), full=list(BIASES)),
            "lr": pick(
                size,
                tiny=[0.03, 1.0],
                default=[0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
                full=[0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
            ),
        }
    return sp


def specs(size: str, data_dir: str | None = None) -> dict[str, dict[str, Any]]:
    """Both sweeps, by model."""
    return {m: spec(size, m, data_dir) for m in MODELS}


# --------------------------------------------------------------------------- one run


def _floats(v: Sequence[float | None] | None) -> list[float] | None:
    return None if v is None else [math.nan if x is None else float(x) for x in v]


def run_state(r: Mapping[str, Any]) -> dict[str, Any]:
    """What became of one run: ``diverged``; ``collapsed`` (ended at chance, whether or not it
    reached the target on the way); ``died`` (not diverged, some layer >= DEAD_LEVEL dead);
    ``dead`` (per layer at the end, None when diverged); ``failed`` (any of the three)."""
    diverged = bool(r.get("diverged"))
    dead = None if diverged else _floats(r.get("final_dead_fraction"))
    finite = [x for x in dead or [] if math.isfinite(x)]
    died = bool(finite) and max(finite) >= DEAD_LEVEL
    end = {**r, "steps_to_target": None, "reached": False}  # the end state only
    collapsed = not diverged and stats.outcome(end) == "collapsed"
    return {
        "diverged": diverged,
        "collapsed": collapsed,
        "died": died,
        "dead": dead,
        "dead_max": max(finite) if finite else None,
        "failed": diverged or collapsed or died,
    }


# --------------------------------------------------------------------------- analysis (pure)


def _prop(k: int, n: int) -> dict[str, Any]:
    return {"k": k, "n": n, "p": k / n if n else None, "ci95": proportion_ci(k, n)}


def _median_ci(values: Sequence[float]) -> dict[str, Any]:
    v = [x for x in values if math.isfinite(x)]
    return {
        "n": len(v),
        "median": float(np.median(v)) if v else None,
        "ci95": boot_ci(v, "median") if v else None,
    }


def cell(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One (model, init, bias, lr) cell over its seeds."""
    rs = sorted(records, key=lambda r: r["seed"])
    st = [run_state(r) for r in rs]
    n = len(rs)
    n_layers = max((len(s["dead"]) for s in st if s["dead"] is not None), default=0)
    q0 = [q for q in (_floats(r.get("init_q")) for r in rs) if q]
    return {
        "n": n,
        "seeds": [r["seed"] for r in rs],
        "died": _prop(sum(s["died"] for s in st), n),
        "collapsed": _prop(sum(s["collapsed"] for s in st), n),
        "diverged": _prop(sum(s["diverged"] for s in st), n),
        "failed": _prop(sum(s["failed"] for s in st), n),
        "collapsed_and_died": sum(s["collapsed"] and s["died"] for s in st),
        "died_per_seed": [s["died"] for s in st],
        "diverged_per_seed": [s["diverged"] for s in st],
        "dead_max_per_seed": [s["dead_max"] for s in st],
        "dead_per_layer": [
            _median_ci([s["dead"][i] for s in st if s["dead"] is not None]) for i in range(n_layers)
        ],
        "dead_max": _median_ci([s["dead_max"] for s in st if s["dead_max"] is not None]),
        # RMS pre-activation of each layer at init, median over seeds
        "init_rms": [float(np.median([math.sqrt(q[i]) for q in q0])) for i in range(len(q0[0]))]
        if q0
        else None,
        "steps": km(rs),
    }


def onset(lrs: Sequence[float], props: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Where a share of runs first reaches ONSET_P along the lr grid: ``lr`` (smallest lr with
    an estimate >= ONSET_P; None: not in the grid), and the range ``[lo, hi]``: lo the smallest
    lr whose 95% CI reaches ONSET_P (None: excluded everywhere), hi the smallest lr whose CI
    lies above it (None: established nowhere). ``below_grid``: established at the smallest lr
    already."""
    est = [lr for lr, p in zip(lrs, props, strict=True) if p["p"] is not None and p["p"] >= ONSET_P]
    lo = [lr for lr, p in zip(lrs, props, strict=True) if p["ci95"] and p["ci95"][1] >= ONSET_P]
    hi = [lr for lr, p in zip(lrs, props, strict=True) if p["ci95"] and p["ci95"][0] > ONSET_P]
    return {
        "lr": est[0] if est else None,
        "lo": lo[0] if lo else None,
        "hi": hi[0] if hi else None,
        "below_grid": bool(hi) and hi[0] == lrs[0],
        "never": not lo,
    }


def seed_onsets(lrs: Sequence[float], cells: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Per seed, the grid index of the first lr at which its run died; len(lrs) if never."""
    out: dict[int, int] = {}
    for i, c in enumerate(cells):
        for seed, died in zip(c["seeds"], c["died_per_seed"], strict=True):
            out.setdefault(seed, len(lrs))
            if died and out[seed] == len(lrs):
                out[seed] = i
    return out


def shift(base: Mapping[int, int], other: Mapping[int, int], n_grid: int) -> dict[str, Any]:
    """Onset index of ``other`` minus ``base`` per shared seed (positive: the other bias dies
    at larger lrs); mean with a seed-bootstrap 95% CI. ``censored``: seeds where either side
    never died in the grid (their shift is a bound)."""
    seeds = sorted(set(base) & set(other))
    d = [other[s] - base[s] for s in seeds]
    return {
        "n_seeds": len(seeds),
        "per_seed": d,
        "mean": float(np.mean(d)) if d else None,
        "ci95": boot_ci(d, "mean") if d else None,
        "up": sum(x > 0 for x in d),
        "down": sum(x < 0 for x in d),
        "same": sum(x == 0 for x in d),
        "censored": sum(base[s] == n_grid or other[s] == n_grid for s in seeds),
    }


def analyse(records: Mapping[str, Sequence[Mapping[str, Any]]], sps: Mapping[str, Any]) -> dict:
    """Records by model -> per arm (model, init) and bias the cells along the lr grid, the
    onsets of death and of failure, and the paired onset shifts of each bias against 0."""
    arms = []
    for model, sp in sps.items():
        recs = records[model]
        lrs = list(sp["lr"])
        biases = list(sp["bias_init"])
        for init in sp["init"]:
            by_bias = {}
            for b in biases:
                cells = [
                    cell(
                        [
                            r
                            for r in recs
                            if r["init"] == init and r["bias_init"] == b and r["lr"] == lr
                        ]
                    )
                    for lr in lrs
                ]
                by_bias[f"{b:g}"] = {
                    "bias": b,
                    "cells": cells,
                    "death_onset": onset(lrs, [c["died"] for c in cells]),
                    "failure_onset": onset(lrs, [c["failed"] for c in cells]),
                    "seed_onsets": seed_onsets(lrs, cells),
                }
            base = by_bias[f"{biases[0]:g}"]["seed_onsets"]
            shifts = {
                f"{b:g}": shift(base, by_bias[f"{b:g}"]["seed_onsets"], len(lrs))
                for b in biases[1:]
            }
            for v in by_bias.values():  # JSON keys must be strings
                v["seed_onsets"] = {str(k): x for k, x in v["seed_onsets"].items()}
            arms.append(
                {
                    "model": model,
                    "init": init,
                    "label": _label(model, init, sp),
                    "lrs": lrs,
                    "biases": biases,
                    "by_bias": by_bias,
                    "shifts": shifts,
                }
            )
    n = sum(len(v) for v in records.values())
    diverged = sum(bool(r.get("diverged")) for v in records.values() for r in v)
    return {
        "arms": arms,
        "n_runs": n,
        "n_diverged": diverged,
        "dead_level": DEAD_LEVEL,
        "onset_p": ONSET_P,
        "claim_bias": CLAIM_BIAS,
        "protocol": grid_block(
            sorted({r["seed"] for v in records.values() for r in v}),
            "Clopper-Pearson for proportions over seeds; percentile seed bootstrap for medians "
            "and for the mean paired onset shift",
            grid={m: {k: sp[k] for k in ("init", "bias_init", "lr")} for m, sp in sps.items()},
            n_runs=n,
            n_diverged=diverged,
        ),
    }


def _label(model: str, init: str, sp: Mapping[str, Any]) -> str:
    net = (
        f"CNN {'-'.join(map(str, sp['channels']))}"
        if model == "cnn"
        else f"MLP {sp['depth']}x{sp['width']}"
    )
    return f"{net}, {'LeCun-normal' if init == 'lecun_normal' else f'Gaussian std {INIT_STD:g}'}"


# --------------------------------------------------------------------------- verdict (pure)


def _p_side(p: Mapping[str, Any]) -> int:
    """+1 when the CI of a proportion lies above ONSET_P, -1 below, 0 when it straddles it."""
    lo, hi = p["ci95"] or (0.0, 1.0)
    return 1 if lo > ONSET_P else -1 if hi < ONSET_P else 0


def lr_part(arm: Mapping[str, Any]) -> tuple[str, str]:
    """'Large learning rates kill ReLUs', at bias 0: held when at some lr the CI of P(died) lies
    above 1/2 while at the smallest lr it lies below (death sets in inside the grid); not held
    when it lies below 1/2 at every lr; inconclusive otherwise (also when death is established
    at the smallest lr already: the grid sees no onset)."""
    cells = arm["by_bias"][f"{arm['biases'][0]:g}"]["cells"]
    sides = [_p_side(c["died"]) for c in cells]
    if all(s == -1 for s in sides):
        return NOT_HELD, "no lr of the grid killed half the runs"
    if sides[0] == -1 and 1 in sides:
        return HELD, "death sets in inside the grid"
    if sides[0] == 1:
        return INCONCLUSIVE, "most runs died at the smallest lr already"
    return INCONCLUSIVE, "no lr established death in half the runs"


def bias_part(arm: Mapping[str, Any], bias: float = CLAIM_BIAS) -> tuple[str, str]:
    """'A small positive bias reduces dead units': the paired onset shift of ``bias`` against
    0 in grid steps. Held when its CI lies above 0; not held when it lies below 0, or inside
    (-1, 1) (the bias moves death by less than one grid step); inconclusive otherwise, and when
    death never sets in at bias 0 (nothing to move)."""
    base = arm["by_bias"][f"{arm['biases'][0]:g}"]
    sh = arm["shifts"].get(f"{bias:g}")
    if sh is None or sh["ci95"] is None:
        return INCONCLUSIVE, f"bias {bias:g} not run"
    if base["death_onset"]["lr"] is None:
        return INCONCLUSIVE, "death never set in at bias 0, so there is nothing to move"
    lo, hi = sh["ci95"]
    if lo > 0:
        return HELD, f"bias {bias:g} moves death to larger lrs"
    if hi < 0:
        return NOT_HELD, f"bias {bias:g} moves death to smaller lrs"
    if lo > -1 and hi < 1:
        return NOT_HELD, f"bias {bias:g} moves death by less than one grid step"
    return INCONCLUSIVE, f"the shift with bias {bias:g} is not determined"


def verdict(s: Mapping[str, Any]) -> tuple[str, str]:
    """Per arm (model, init) two parts, ``lr_part`` and ``bias_part``; the claim holds where
    every part of every arm holds, fails where any part fails (``combine``)."""
    parts, sentences = [], []
    for arm in s["arms"]:
        a, a_why = lr_part(arm)
        b, b_why = bias_part(arm)
        parts += [a, b]
        sh = arm["shifts"].get(f"{CLAIM_BIAS:g}")
        shift_txt = (
            f" (mean onset shift {fmt_num(sh['mean'], 2)} grid steps, 95% CI "
            f"{fmt_interval(sh['ci95'], 2)}, {sh['n_seeds']} seeds)"
            if sh and sh["mean"] is not None
            else ""
        )
        sentences.append(
            f"{arm['label']}: large lr kills: {a} ({a_why}); bias {CLAIM_BIAS:g} helps: {b} "
            f"({b_why}{shift_txt})."
        )
    return combine(parts), " ".join(sentences)


# --------------------------------------------------------------------------- text


def _fmt_lr(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def _onset_txt(o: Mapping[str, Any], lrs: Sequence[float]) -> str:
    """Where a share first reaches ONSET_P, with its range, in words."""
    if o["never"]:
        return f"at no lr up to {lrs[-1]:g} (under half the runs at every lr)"
    if o["below_grid"]:
        return f"at lr {lrs[0]:g} or below (most runs already at the smallest lr)"
    at = f"at lr {_fmt_lr(o['lr'])}" if o["lr"] is not None else f"not within lr <= {lrs[-1]:g}"
    hi = _fmt_lr(o["hi"]) if o["hi"] is not None else f"> {lrs[-1]:g}"
    return f"{at} (range {_fmt_lr(o['lo'])} to {hi})"


def _fmt_p(p: Mapping[str, Any]) -> str:
    return f"{p['k']}/{p['n']} {fmt_interval(p['ci95'], 2)}"


def answer(s: Mapping[str, Any]) -> str:
    """The opening paragraph, from the summary."""
    out = []
    for arm in s["arms"]:
        b0 = arm["by_bias"][f"{arm['biases'][0]:g}"]
        lrs = arm["lrs"]
        # the lr where most runs died (where none did, where most failed otherwise)
        worst = max(
            range(len(lrs)),
            key=lambda i: (b0["cells"][i]["died"]["k"], b0["cells"][i]["failed"]["k"]),
        )
        c = b0["cells"][worst]
        line = (
            f"**{arm['label']}** (bias 0): death (a layer >= {s['dead_level']:.0%} dead on the "
            f"whole training set) sets in {_onset_txt(b0['death_onset'], lrs)}; at lr "
            f"{lrs[worst]:g} {c['died']['k']}/{c['n']} runs died, {c['collapsed']['k']} ended "
            f"at chance ({c['collapsed_and_died']} of them with a dead layer) and "
            f"{c['diverged']['k']} diverged; "
            + (
                f"the most-dead layer's dead fraction there has median "
                f"{fmt_num(c['dead_max']['median'], 2)} over the non-diverged runs"
                if c["dead_max"]["median"] is not None
                else "no run there survived to be measured"
            )
            + ". Any failure (died, collapsed or diverged) "
            f"sets in {_onset_txt(b0['failure_onset'], lrs)}."
        )
        every = [c for v in arm["by_bias"].values() for c in v["cells"]]
        n_col = sum(c["collapsed"]["k"] for c in every)
        if n_col:
            line += (
                f" Over all its biases and lrs, {sum(c['collapsed_and_died'] for c in every)} of "
                f"its {n_col} collapsed runs had a dead layer."
            )
        rms = b0["cells"][0]["init_rms"]
        if rms:
            line += (
                f" Pre-activation RMS at init: {fmt_num(min(rms), 2)} to {fmt_num(max(rms), 2)} "
                f"over the layers, so a bias of {s['claim_bias']:g} is "
                f"{fmt_num(s['claim_bias'] / max(rms), 2)} to "
                f"{fmt_num(s['claim_bias'] / min(rms), 2)} times it."
            )
        moves = []
        for b, sh in arm["shifts"].items():
            if sh["mean"] is None:
                continue
            moves.append(
                f"{b}: {fmt_num(sh['mean'], 2)} {fmt_interval(sh['ci95'], 2)} "
                f"({sh['up']} seeds later, {sh['down']} earlier)"
            )
        if moves:
            line += (
                " Onset shift against bias 0, grid steps per seed (mean, 95% CI): "
                + "; ".join(moves)
                + ". Any failure sets in, by bias: "
                + "; ".join(
                    f"{b}: {_onset_txt(v['failure_onset'], lrs)}" for b, v in arm["by_bias"].items()
                )
                + "."
            )
        out.append(line)
    st, _ = verdict(s)
    return (
        "\n\n".join(out) + f"\n\nVerdict: **{st}** (each arm's two parts are listed under Verdict)."
    )


def _timing_txt(timing: Mapping[str, Any] | None, sps: Mapping[str, Any]) -> str:
    if not timing:
        return ""
    parts = [
        f"{m.upper()} {t['run_s']:.0f} s for {_n_runs(sps[m])} runs "
        f"(+{t['compile_s']:.0f} s compiling)"
        for m, t in timing.items()
    ]
    return " Measured here (wall, on a shared machine): " + "; ".join(parts) + "."


def _n_runs(sp: Mapping[str, Any]) -> int:
    return len(sp["init"]) * len(sp["bias_init"]) * len(sp["lr"]) * len(sp["seed"])


def report(ctx: Context, sps: Mapping[str, Any], s: dict[str, Any], figs: list[str]) -> dict:
    """REPORT.md and summary.json from the summary (every number in the text comes from it)."""
    blocks = []
    for arm in s["arms"]:
        rows = []
        for b, v in arm["by_bias"].items():
            for lr, c in zip(arm["lrs"], v["cells"], strict=True):
                rows.append(
                    [
                        b,
                        f"{lr:g}",
                        _fmt_p(c["died"]),
                        _fmt_p(c["collapsed"]),
                        _fmt_p(c["diverged"]),
                        ", ".join(
                            f"{fmt_num(d['median'], 2)} {fmt_interval(d['ci95'], 2)}"
                            for d in c["dead_per_layer"]
                        )
                        or "-",
                        fmt_km(c["steps"], sps[arm["model"]]["steps"]),
                    ]
                )
        onsets = md_table(
            ["bias", "death sets in", "any failure sets in", "onset shift vs 0 [95% CI]"],
            [
                [
                    b,
                    _onset_txt(v["death_onset"], arm["lrs"]),
                    _onset_txt(v["failure_onset"], arm["lrs"]),
                    "-"
                    if b == f"{arm['biases'][0]:g}"
                    else (
                        f"{fmt_num(arm['shifts'][b]['mean'], 2)} "
                        f"{fmt_interval(arm['shifts'][b]['ci95'], 2)} "
                        f"(+{arm['shifts'][b]['up']} / -{arm['shifts'][b]['down']} / "
                        f"={arm['shifts'][b]['same']}; {arm['shifts'][b]['censored']} censored)"
                    ),
                ]
                for b, v in arm["by_bias"].items()
            ],
        )
        rms = arm["by_bias"][f"{arm['biases'][0]:g}"]["cells"][0]["init_rms"] or []
        blocks.append(
            f"### {arm['label']}\n\n"
            f"Pre-activation RMS at init per layer (bias 0, median over seeds): "
            f"{', '.join(fmt_num(x, 2) for x in rms)}.\n\n"
            + md_table(
                [
                    "bias",
                    "lr",
                    "died [95% CI]",
                    "collapsed",
                    "diverged",
                    "dead fraction per layer, median [95% CI] (non-diverged)",
                    "steps to target, KM median [95% CI]",
                ],
                rows,
            )
            + "\n\n"
            + onsets
        )
    results_md = (
        "Published: no numbers; the slides state directions only.\n\n"
        f"Per cell, over its seeds: died = not diverged and some layer >= {DEAD_LEVEL:.0%} dead "
        "on the whole training set at the end; collapsed = ended at chance (error or loss of a "
        "constant prediction); diverged = stopped by the harness. Counts k/n with Clopper-"
        "Pearson 95% CIs. Dead fractions: median over the non-diverged seeds, seed-bootstrap "
        "95% CI. Onset shift: per seed the grid index of the first lr at which its run died "
        "(one past the grid when it never did), this bias minus bias 0; mean over seeds with "
        "a seed-bootstrap CI; +/-/= count the seeds dying later / earlier / at the same lr; "
        "censored seeds never died on one side, so their shift is a bound.\n\n"
        + "\n\n".join(blocks)
    )
    any_sp = next(iter(sps.values()))
    n_train = any_sp["data"]["limit_train"]
    setup_lines = []
    for m, sp in sps.items():
        net = (
            f"CNN (cifar_18pct: conv 5x5 -> max-pool 3/2 -> conv -> avg-pool -> conv -> avg-pool "
            f"-> fc; channels {sp['channels']})"
            if m == "cnn"
            else f"MLP 784 -> {sp['width']} x {sp['depth']} -> 10"
        )
        setup_lines.append(
            f"- {net}: init {sp['init']}, bias init {sp['bias_init']}, lr {sp['lr']}, seeds "
            f"{sp['seed'][0]}..{sp['seed'][-1]} ({len(sp['seed'])}), batch {sp['batch_size']}, "
            f"{sp['steps']} steps, target {sp['target']} training error."
        )
    setup = (
        f"Fashion-MNIST, the first {n_train} training images (standardised) as the training "
        "set; training error and dead units are measured on all of them (`eval_size = "
        f"diag_size = {n_train}`). Momentum SGD (0.9), ReLU, Gaussian init std {INIT_STD:g} "
        "for every weight layer or LeCun-normal; biases start at the bias init. Two sweeps "
        "(`bench.reproduce._common.sweep`):\n\n"
        + "\n".join(setup_lines)
        + "\n\nSizing (the default fits a 2-core CPU): a CNN run costs far more than an MLP "
        "run (convolutions, and a whole-set diagnostic of seconds), so the MLP carries the full "
        "init x bias grid and the CNN the LeCun init with biases 0, 0.01 and 0.1 (the full "
        "grid with `--full`); short budgets suffice because collapse and divergence show in "
        "the first tens of steps, and a small training subset makes counting dead units on all "
        "of it affordable." + _timing_txt(s.get("timing"), sps) + "\n\n"
        "Design: the grid as given, no lr tuning (the lr is the factor under study); the seed is "
        f"the statistical unit ({len(any_sp['seed'])} seeds, shared by every cell: same initial "
        "weights up to the bias, same minibatches). Every run is counted; none is dropped."
    )
    st, text = verdict(s)
    return write_report(
        ctx,
        title=TITLE,
        claim=CLAIM,
        setup=setup,
        results_md=results_md,
        verdict=(
            f"**{st.capitalize()}.** {text}\n\nRules: 'large lr kills' holds in an arm when at "
            f"bias 0 the CI of P(died) lies above {ONSET_P:g} at some lr and below it at the "
            "smallest; it fails when it lies below at every lr. 'Bias 0.01 helps' holds when the "
            "CI of the mean paired onset shift lies above 0; it fails when it lies below 0 or "
            "inside (-1, 1) grid steps. The claim holds when every part of every arm holds."
        ),
        figures=figs,
        config={m: sp for m, sp in sps.items()},
        data=clean({**s, "status": st, "results_bytes": dir_size(ctx.out_dir)}),
        answer=answer(s),
    )


# --------------------------------------------------------------------------- figures


def _median_arrays(ds: Sequence[Mapping[str, Any] | None]) -> tuple[np.ndarray, ...]:
    """(median, CI low, CI high) arrays of ``_median_ci`` results; NaN where unmeasured."""

    def get(d: Mapping[str, Any] | None, i: int) -> float:
        if d is None or d["median"] is None:
            return math.nan
        return float(d["median"] if i < 0 else d["ci95"][i])

    return tuple(np.array([get(d, i) for d in ds]) for i in (-1, 0, 1))


def _plot(ctx: Context, s: Mapping[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = s["arms"]
    names = []
    # 1. P(died), P(collapsed), P(diverged) against lr, one row per arm, a line per bias.
    what = (("died", "P(died)"), ("collapsed", "P(collapsed)"), ("diverged", "P(diverged)"))
    fig, axes = plt.subplots(
        len(arms), 3, figsize=(12, 3.0 * len(arms)), squeeze=False, layout="constrained"
    )
    for row, arm in zip(axes, arms, strict=True):
        lrs = np.array(arm["lrs"])
        for j, (b, v) in enumerate(arm["by_bias"].items()):
            dx = 1 + 0.05 * (j - (len(arm["by_bias"]) - 1) / 2)  # spread the error bars
            for ax, (key, ylabel) in zip(row, what, strict=True):
                ps = [c[key] for c in v["cells"]]
                p = np.array([x["p"] for x in ps], float)
                lo = np.array([x["ci95"][0] for x in ps], float)
                hi = np.array([x["ci95"][1] for x in ps], float)
                ax.errorbar(
                    lrs * dx,
                    p,
                    yerr=[p - lo, hi - p],
                    fmt="o-",
                    ms=4,
                    capsize=2,
                    color=f"C{j}",
                    label=f"bias {b}",
                )
                ax.set(
                    xscale="log",
                    ylim=(-0.03, 1.03),
                    xlim=(lrs[0] / 1.5, lrs[-1] * 1.5),
                    xlabel="learning rate",
                    ylabel=ylabel,
                )
        row[0].set_title(arm["label"], loc="left", fontsize=9)
        row[0].legend(fontsize=7)
    fig.suptitle(
        f"Share of runs (95% Clopper-Pearson CI over seeds); died = a layer >= "
        f"{s['dead_level']:.0%} dead on the whole training set",
        fontsize=9,
    )
    names.append(save_figure(ctx, fig, "outcomes_vs_lr.png"))

    # 2. dead fraction per layer at the end (median, bootstrap CI), one panel per arm and bias.
    n_bias = max(len(a["by_bias"]) for a in arms)
    fig, axes = plt.subplots(
        len(arms),
        n_bias,
        figsize=(3.2 * n_bias, 2.8 * len(arms)),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    for row, arm in zip(axes, arms, strict=True):
        lrs = np.array(arm["lrs"])
        for ax, (b, v) in zip(row, arm["by_bias"].items(), strict=False):
            n_layers = max(len(c["dead_per_layer"]) for c in v["cells"])
            for layer in range(n_layers):
                ds = [
                    c["dead_per_layer"][layer] if layer < len(c["dead_per_layer"]) else None
                    for c in v["cells"]
                ]
                med, lo, hi = _median_arrays(ds)
                ax.errorbar(
                    lrs * (1 + 0.03 * layer),
                    med,
                    yerr=np.nan_to_num([med - lo, hi - med]),
                    fmt="o-",
                    ms=3,
                    capsize=2,
                    color=plt.cm.viridis(layer / max(n_layers - 1, 1)),
                    label=f"layer {layer + 1}",
                )
            ax.set(
                xscale="log",
                xlabel="learning rate",
                ylim=(-0.03, 1.03),
                xlim=(lrs[0] / 1.5, lrs[-1] * 1.5),  # fixed: a cell may have no survivor
            )
            ax.set_title(f"{arm['label']}, bias {b}", fontsize=8)
        for ax in row[len(arm["by_bias"]) :]:
            ax.set_visible(False)
        row[0].set_ylabel("dead fraction (end)")
        row[0].legend(fontsize=6)
    fig.suptitle(
        "Dead units at the end of training, per layer: median over non-diverged seeds, "
        "95% seed-bootstrap CI",
        fontsize=9,
    )
    names.append(save_figure(ctx, fig, "dead_per_layer.png"))
    return names


# --------------------------------------------------------------------------- run


def _timing(run_dir: Any) -> dict[str, float]:
    """Compile and run seconds of a sweep's groups, summed (from its meta.json)."""
    groups = results.read_json(run_dir / "meta.json").get("groups", {})
    return {k: float(sum(g.get(k, 0.0) for g in groups.values())) for k in ("compile_s", "run_s")}


# Per-layer diagnostics a record keeps (init_ and final_); the others are dropped to keep the
# results directory small (600 runs x 11 metrics x 2 points x L layers).
DIAG_KEEP = ("dead_fraction", "q", "sparsity")


def _slim_records(run_dir: Any) -> None:
    """Drop the diagnostics this claim does not read from the run's records (rewritten
    atomically, in the harness's format; the groups stay finished, so a rerun resumes)."""
    from bench.diagnostics import METRICS

    drop = {f"{w}_{m}" for w in ("init", "final") for m in METRICS if m not in DIAG_KEEP}
    recs = results.read_records(run_dir)
    if not any(drop & r.keys() for r in recs):
        return
    lines = [
        results.to_json({k: v for k, v in r.items() if k not in drop}, sort_keys=True) for r in recs
    ]
    results.atomic_write_text(run_dir / "records.jsonl", "".join(x + "\n" for x in lines))


def run(ctx: Context) -> dict[str, Any]:
    sps = specs(ctx.size, ctx.data_dir)
    records, timing = {}, {}
    for model, sp in sps.items():
        run_dir, records[model] = sweep(ctx, sp)
        slim_curves(run_dir, keep=("config_ids", "eval_steps", "eval_error"))
        _slim_records(run_dir)
        timing[model] = _timing(run_dir)
    s = analyse(records, sps)
    s["timing"] = timing
    figs = _plot(ctx, s)
    return report(ctx, sps, s, figs)
