"""Claim 5 (He, Zhang, Ren, Sun 2015): a 30-layer ReLU net with Xavier init stalls while He init
(Var W = 2 / fan_in) converges; at 22 layers both converge, He earlier.

Measured (``bench.protocol``): a deep ReLU MLP on MNIST-1D at 22 and 30 layers, Xavier-normal vs
He-normal init. The lr of each (depth, init) is tuned on tuning seeds over a grid that reaches
lrs where the nets diverge (extended until the best lr is bracketed), then 8 fresh seeds are
measured at it. A run's **onset** is the first evaluation at which its training error beats
the best constant guess by more than the sampling noise of an error measured on the evaluation
subset (``noise_line``); a run **stalls** when it has no onset in the first ``STALL_FRACTION``
of the budget. Per setting: the share of stalled runs (Clopper-Pearson CI), the Kaplan-Meier
median onset and steps to target, and the paired ratio Xavier/He of steps to target; per lr
tried, whether the tuning runs learned at all or diverged (does Xavier stall at *every* lr up
to divergence?). At initialisation: the back-propagated gradient of hidden layer 1 over the
top hidden layer, against He et al.'s (sigma_w^2 / 2)^(L - 1) (Xavier: 2^-(L-1), He: 1), in
the trained nets themselves (``bench.diagnostics.at_init``) and in the plain square nets of
``bench.attenuation``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from bench import summary
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
    fmt_ratio,
    km,
    md_table,
    measured_curves,
    pick,
    proportion_ci,
    protocol_block,
    protocol_md,
    ratio,
    save_figure,
    select,
    side,
    slim_stages,
    tuned_sweep,
    write_report,
)

TITLE = "30-layer ReLU net: Xavier init stalls, He init converges (He et al. 2015)"

CLAIM = """
He, Zhang, Ren & Sun (2015), "Delving deep into rectifiers", Sec. 2.2 and Fig. 3: with ReLU,
initialising Var W = 2 / fan_in (1/2 n Var W = 1 per layer) keeps the signal and gradient
magnitudes constant with depth; with 1/2 n Var W < 1 the back-propagated gradient shrinks by
that factor per layer (they checked the first layer's gradient at init against this). A
**30-layer** network initialised with the Xavier scheme (Var W = 1 / n) **stalls** (does not
learn), while the same network with their init **converges**; a **22-layer** network
**converges with both**, their init starting to reduce the error **earlier**. (Published as
curves; no step counts to compare with.)
"""

INITS = ("xavier_normal", "he_normal")
LABEL = {
    "xavier_normal": "Xavier (Var W = 2/(fan_in+fan_out))",
    "he_normal": "He (Var W = 2/fan_in)",
}
# fan_in Var W of a square hidden layer: Xavier 2n / 2n = 1, He 2.
SIGMA_SQ = {"xavier_normal": 1.0, "he_normal": 2.0}

# A run stalls when it has not beaten chance (noise_line) within this share of the budget:
# half the budget is several times the onset of any net that trains here (He: <= 15% at both
# depths in the committed run), and leaves the second half to show a stall is not a late start.
STALL_FRACTION = 0.5
NOISE_Z = 3.0  # one-sided, ~0.13% per evaluation; <= 5% over the 40 evaluations of the budget
GRAD_FACTOR = 2.0  # measured / theory gradient ratio "agrees" within this factor


def spec(size: str, data_dir: str | None = None) -> dict[str, Any]:
    """The sweep: 22- and 30-layer ReLU MLPs, Xavier vs He init, lr tuned per (depth, init)."""
    return {
        "experiment": "he_30_layer",
        "description": "He et al. 2015: 22/30-layer relu MLP, xavier vs he init",
        "dataset": pick(size, tiny="mnist1d", default="mnist1d", full="fashion-mnist"),
        "model": "mlp",
        "activation": "relu",
        "depth": pick(size, tiny=[2], default=[22, 30], full=[22, 30]),
        "width": pick(size, tiny=16, default=64, full=256),
        "init": list(INITS),
        "optimizer": "momentum",
        "momentum": 0.9,
        "batch_size": pick(size, tiny=32, default=128, full=128),
        "steps": pick(size, tiny=20, default=1000, full=10000),
        "eval_every": pick(size, tiny=10, default=25, full=100),
        "eval_size": pick(size, tiny=100, default=500, full=5000),
        "target": pick(size, tiny=0.85, default=0.6, full=0.3),
        # half decades from where He trains slowly to where a 30-layer Xavier net diverges
        # (pilot, 1 seed: it stalls at 1, diverges at 10); extended (x3.3) while the best lr
        # is on an edge, so the search ends at an lr that diverges or is worse
        "lr": pick(
            size,
            tiny=[0.01],
            default=[0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
            full=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
        ),
        "protocol": "tuned",
        # two tuning seeds: the deep nets cost ~5 s a run on 2 CPU cores, and 8 measurement
        # seeds are the priority (8/8 stalled is the least a Clopper-Pearson CI needs to lie
        # wholly above 1/2 with room; 5/5 gives [0.48, 1])
        "tuning_seeds": pick(size, tiny=[1000], default=[1000, 1001], full=[1000, 1001, 1002]),
        "lr_extensions": pick(size, tiny=0, default=3, full=4),
        "seed": pick(size, tiny=[0, 1], default=list(range(8)), full=list(range(8))),
        # a run that reached the target has had its onset, so stopping it changes no verdict
        "early_exit": 2,
        "strategy": "auto",
    }


def grad_spec(size: str) -> dict[str, Any]:
    """The measurement at initialisation (no training)."""
    return {"seeds": pick(size, tiny=2, default=32, full=64), "examples": 512}


# --------------------------------------------------------------------------- analysis (pure)


def noise_line(labels: ArrayLike, z: float = NOISE_Z) -> dict[str, float]:
    """The error a run must beat to count as learning: the best constant guess on the
    evaluation subset, ``c = 1 - max_k freq_k``, minus ``z`` binomial standard errors of an
    error rate ``c`` measured on its ``n`` examples."""
    y = np.asarray(labels)
    n = int(y.size)
    c = 1.0 - float(np.bincount(y).max()) / n
    se = math.sqrt(c * (1.0 - c) / n)
    return {"chance": c, "se": se, "z": z, "n": n, "line": c - z * se}


def onset_step(steps: ArrayLike, errors: ArrayLike, line: float) -> int | None:
    """First evaluation step whose training error is at or below ``line``; None if none (a
    diverged run's NaN never counts)."""
    for s, e in zip(np.asarray(steps), np.asarray(errors, np.float64), strict=True):
        if math.isfinite(e) and e <= line:
            return int(s)
    return None


def stalled(onset: int | None, budget: int, fraction: float = STALL_FRACTION) -> bool:
    return onset is None or onset > fraction * budget


def _final_error(r: Mapping[str, Any], key: str = "final_train_error") -> float:
    """A run's final (or lowest) training error; a diverged run counts as 1."""
    e = r.get(key)
    return 1.0 if r.get("diverged") or e is None else float(e)


def _km_onsets(onsets: Sequence[int | None], budget: int) -> dict[str, Any]:
    """KM median onset (no onset: censored at the budget) via the steps-to-target machinery."""
    recs = [
        {"steps_to_target": o, "reached": o is not None, "steps": budget, "final_train_error": 0}
        for o in onsets
    ]
    return km(recs)


def analyse(
    records: list[dict[str, Any]],
    p: dict[str, Any],
    sp: dict[str, Any],
    noise: Mapping[str, float],
    grads: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Records of the tuned sweep (measurement runs carrying their ``onset``), the protocol's
    summary, the noise line and the gradients at init -> per (depth, init) the lr search, the
    stall share and onset, KM steps to target; per depth the paired ratio Xavier/He."""
    meas = [r for r in records if r["stage"] == "measure"]
    tune = [r for r in records if r["stage"] == "tune"]
    rows = {(x["depth"], x["init"]): x for x in p["settings"]}
    budget, line = sp["steps"], noise["line"]
    by_depth: dict[str, Any] = {}
    for d in sp["depth"]:
        out: dict[str, Any] = {}
        for init in INITS:
            row = rows.get((d, init))
            if row is None:
                continue
            rs = select(meas, depth=d, init=init)
            onsets = [r.get("onset") for r in rs]
            n_stall = sum(stalled(o, budget) for o in onsets)
            lrs = []
            for lr in sorted(
                {float(r["lr"]) for r in tune if r["depth"] == d and r["init"] == init}
            ):
                tr = select(tune, depth=d, init=init, lr=lr)
                learned = [
                    not r.get("diverged")
                    and r.get("min_train_error") is not None
                    and r["min_train_error"] <= line
                    for r in tr
                ]
                lrs.append(
                    {
                        "lr": lr,
                        "n": len(tr),
                        "learned": int(sum(learned)),
                        "diverged": int(sum(bool(r.get("diverged")) for r in tr)),
                        "min_error_median": float(
                            np.median([_final_error(r, "min_train_error") for r in tr])
                        ),
                    }
                )
            top = lrs[-1] if lrs else None
            # the smallest lr from which every tuning run of every larger lr diverged
            first_div = None
            for one in reversed(lrs):
                if not (one["n"] and one["diverged"] == one["n"]):
                    break
                first_div = one["lr"]
            out[init] = {
                "lr": row["lr"],
                "bracket_closed": row["bracket"]["closed"],
                "open_side": row["bracket"]["open_side"],
                "lr_search": lrs,
                "largest_lr_diverged": bool(top and top["diverged"] == top["n"] and top["n"]),
                "first_diverging_lr": first_div,
                "learned_below_divergence": [x["lr"] for x in lrs if x["learned"]],
                **km(rs),
                "measured_diverged": sum(bool(r.get("diverged")) for r in rs),
                "onset_per_seed": onsets,
                "onset": _km_onsets(onsets, budget),
                "stalled": n_stall,
                "n_stall_runs": len(rs),
                "stall_share_ci": proportion_ci(n_stall, len(rs)),
                "final_error_median": float(np.median([_final_error(r) for r in rs])),
            }
        x, h = select(meas, depth=d, init="xavier_normal"), select(meas, depth=d, init="he_normal")
        out["ratio_xavier_over_he"] = ratio(x, h) if x and h else None
        if grads:
            out["grad_at_init"] = grads.get(str(d))
        by_depth[str(d)] = out
    return {
        "target": sp["target"],
        "steps": budget,
        "noise": dict(noise),
        "stall_fraction": STALL_FRACTION,
        "stall_definition": (
            f"no evaluation with training error <= {line:.3f} (the best constant guess "
            f"{noise['chance']:.3f} on the {noise['n']} evaluation examples minus {noise['z']:g} "
            f"binomial SE {noise['se']:.4f}) in the first {STALL_FRACTION:.0%} of the budget "
            f"({int(STALL_FRACTION * budget)} steps); a diverged run stalls"
        ),
        "by_depth": by_depth,
        "protocol": protocol_block(p),
    }


def grad_ratio_stats(
    ratios: ArrayLike, theory: float, factor: float = GRAD_FACTOR
) -> dict[str, Any]:
    """Seed mean of a measured gradient ratio (what mean-field theory predicts: an expectation)
    with its bootstrap CI, over the theory; ``agrees`` +1 when the CI of measured / theory lies
    inside [1/factor, factor], -1 when wholly outside, 0 otherwise."""
    r = np.asarray(ratios, np.float64)
    ci = boot_ci((r / theory).tolist(), "mean")
    rel = float(np.mean(r) / theory)
    agrees = 0
    if ci is not None:
        lo, hi = ci
        agrees = (
            1 if 1 / factor <= lo and hi <= factor else -1 if hi < 1 / factor or lo > factor else 0
        )
    return {
        "mean": float(np.mean(r)),
        "theory": theory,
        "over_theory": rel,
        "over_theory_ci": ci,
        "log2_mean": float(np.log2(np.mean(r))),
        "log2_theory": float(np.log2(theory)),
        "agrees": agrees,
        "n": int(r.size),
    }


def _grad_part(s: dict[str, Any]) -> tuple[str, str]:
    cells = []
    for depth, d in sorted(s["by_depth"].items(), key=lambda kv: int(kv[0])):
        g = d.get("grad_at_init")
        if not g:
            continue
        for init in INITS:
            if init in g.get("net", {}):
                cells.append((depth, init, g["net"][init]))
    if not cells:
        return INCONCLUSIVE, "gradient at init not measured"
    signs = [c["agrees"] for _, _, c in cells]
    st = NOT_HELD if -1 in signs else HELD if all(x == 1 for x in signs) else INCONCLUSIVE
    txt = "; ".join(
        f"{depth} layers {init.split('_')[0]}: {fmt_num(c['mean'])} vs theory "
        f"{fmt_num(c['theory'])} (x{fmt_num(c['over_theory'])} {fmt_interval(c['over_theory_ci'])})"
        for depth, init, c in cells
    )
    return st, (
        "Hidden layer 1 / top hidden layer, mean squared back-propagated gradient at init (seed "
        f"mean, 95% CI of measured/theory; agrees within a factor {GRAD_FACTOR:g}): {txt}"
    )


def _share(g: dict[str, Any]) -> int:
    """+1 when most runs stall (CI above 1/2), -1 when most train, 0 otherwise."""
    return side(g["stall_share_ci"], 0.5)


def _parts(s: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """(status, words) of the deep part (Xavier stalls at every lr up to divergence, He trains),
    the shallow part (both train, He reaches the target first) and the gradient at init."""
    depths = sorted(s["by_depth"], key=int)
    deep, shallow = s["by_depth"][depths[-1]], s["by_depth"][depths[0]]
    word = {1: "stalled", -1: "trained", 0: "unclear (CI of the stall share straddles 1/2)"}

    def share_txt(g: dict[str, Any]) -> str:
        return (
            f"{g['stalled']}/{g['n_stall_runs']} runs stalled "
            f"{fmt_interval(g['stall_share_ci'], 2)}"
        )

    xd, hd = deep["xavier_normal"], deep["he_normal"]
    x, h = _share(xd), _share(hd)
    tested = xd["largest_lr_diverged"] and not xd["learned_below_divergence"]
    if x == -1 or h == 1:
        st_deep = NOT_HELD
    elif (x, h) == (1, -1) and tested:
        st_deep = HELD
    else:
        st_deep = INCONCLUSIVE
    lrs = [v["lr"] for v in xd["lr_search"]]
    reach = f"Xavier's lr search ran {fmt_num(min(lrs))}-{fmt_num(max(lrs))}; " + (
        f"every tuning run diverged from lr {fmt_num(xd.get('first_diverging_lr'))} up, "
        "and none learned at any smaller lr"
        if tested
        else (
            "tuning runs learned at lr "
            + ", ".join(fmt_num(v) for v in xd["learned_below_divergence"])
            if xd["learned_below_divergence"]
            else "it never diverged, so lrs above it are untested"
        )
    )
    deep_txt = (
        f"{depths[-1]} layers: Xavier {word[x]} ({share_txt(xd)}), He {word[h]} "
        f"({share_txt(hd)}); {reach}"
    )
    xs, hs = shallow["xavier_normal"], shallow["he_normal"]
    x, h = _share(xs), _share(hs)
    r = shallow["ratio_xavier_over_he"]
    earlier = side(r["ci"], 1.0, r["ci_bound"]) if r and r["ratio"] is not None else 0
    if x == 1 or h == 1 or earlier == -1:
        st_shallow = NOT_HELD
    elif (x, h, earlier) == (-1, -1, 1):
        st_shallow = HELD
    else:
        st_shallow = INCONCLUSIVE
    shallow_txt = (
        f"{depths[0]} layers: Xavier {word[x]} ({share_txt(xs)}), He {word[h]} ({share_txt(hs)}); "
        f"Xavier/He steps to target = {fmt_ratio(r)} ("
        + {1: "He earlier", -1: "Xavier earlier", 0: "CI includes 1"}[earlier]
        + ")"
    )
    return {
        "deep": (st_deep, deep_txt),
        "shallow": (st_shallow, shallow_txt),
        "gradient": _grad_part(s),
    }


def verdict(s: dict[str, Any]) -> tuple[str, str]:
    """Three parts. Deep (the largest depth): held when the Clopper-Pearson CI of Xavier's
    stall share lies above 1/2, He's below 1/2, and Xavier's lr search reached an lr where every
    tuning run diverged with no tuning run learning at any lr; not held when Xavier trains, He
    stalls; inconclusive otherwise (a Xavier tuning run that learned, or a search that never
    reached divergence, leaves "stalls at every lr" untested). Shallow: held when both stall
    shares lie below 1/2 and the CI of Xavier/He steps to target lies above 1; not held when
    either stalls or the CI lies below 1. Gradient at init: held when the CI of measured /
    theory lies within a factor 2 for every (depth, init), not held when one lies wholly
    outside. The claim holds when every part holds, fails when any part fails."""
    parts = _parts(s)
    st = combine([v[0] for v in parts.values()])
    text = " ".join(f"{t} -> {st_}." for st_, t in parts.values())
    return st, text


def answer(s: dict[str, Any], st: str) -> str:
    """The report's opening paragraph, from the summary."""
    depths = sorted(s["by_depth"], key=int)
    deep = s["by_depth"][depths[-1]]
    xd, hd = deep["xavier_normal"], deep["he_normal"]
    shallow = s["by_depth"][depths[0]]
    xs, hs = shallow["xavier_normal"], shallow["he_normal"]
    lrs = [v["lr"] for v in xd["lr_search"]]
    g = (deep.get("grad_at_init") or {}).get("net", {}).get("xavier_normal")
    grad = (
        f" At init the gradient reaching hidden layer 1 of the {depths[-1]}-layer Xavier net is "
        f"2^{g['log2_mean']:.1f} of the top layer's (He et al.'s theory: 2^{g['log2_theory']:.0f})."
        if g
        else ""
    )
    where = f"at its tuned lr {fmt_num(xd['lr'])}"
    return (
        f"**{st.capitalize()}.** At {depths[-1]} layers Xavier init stalled in {xd['stalled']}/"
        f"{xd['n_stall_runs']} runs on the measurement seeds (no training error below chance "
        f"minus noise in the first {s['stall_fraction']:.0%} of {s['steps']} steps) {where}; its "
        f"lr search ran from {fmt_num(min(lrs))} to {fmt_num(max(lrs))}"
        + (
            " and every lr below the first diverging one stalled on the tuning seeds"
            if xd["largest_lr_diverged"] and not xd["learned_below_divergence"]
            else ""
        )
        + f". He init stalled in {hd['stalled']}/{hd['n_stall_runs']} and reached the target "
        f"{s['target']:g} in a KM median of {fmt_km(hd, s['steps'])} steps. At {depths[0]} "
        f"layers Xavier stalled in {xs['stalled']}/{xs['n_stall_runs']} runs and He in "
        f"{hs['stalled']}/{hs['n_stall_runs']}; Xavier/He steps to target "
        f"{fmt_ratio(shallow['ratio_xavier_over_he'])}.{grad} By part: "
        + ", ".join(f"{k} {v[0]}" for k, v in _parts(s).items())
        + "."
    )


# --------------------------------------------------------------------------- gradients at init


def measure_gradients(sp: dict[str, Any], gs: dict[str, Any], ds: Any) -> dict[str, Any]:
    """Hidden layer 1 / top hidden layer of the mean squared back-propagated gradient at init,
    per depth: in the trained nets (``diagnostics.at_init``, softmax loss on the data) and in the
    plain square nets of ``bench.attenuation`` (Gaussian input, random linear loss)."""
    from bench import attenuation, diagnostics

    out: dict[str, Any] = {}
    for d in sp["depth"]:
        net, layers = {}, {}
        for init in INITS:
            m = diagnostics.at_init(
                {
                    "dataset": sp["dataset"],
                    "activation": "relu",
                    "depth": d,
                    "width": sp["width"],
                    "init": init,
                    "diag_size": gs["examples"],
                    "eval_size": gs["examples"],
                },
                seeds=gs["seeds"],
                dataset=ds,
            )
            g = np.asarray(m["grad_sq"], np.float64)  # (seeds, depth)
            net[init] = grad_ratio_stats(g[:, 0] / g[:, -1], (SIGMA_SQ[init] / 2) ** (d - 1))
            rel = g / g[:, -1:]
            layers[init] = {
                "mean": rel.mean(0).tolist(),
                "ci": [boot_ci(rel[:, i].tolist(), "mean") for i in range(d)],
            }
        square = {}
        if d >= 2:
            sws = [math.sqrt(SIGMA_SQ[i]) for i in INITS]
            a = attenuation.measure(
                "relu", d, sp["width"], sws, 0.0, seeds=gs["seeds"], batch=128, q0=1.0
            )
            for j, init in enumerate(INITS):
                g = np.asarray(a["grad_sq"][j], np.float64)
                square[init] = grad_ratio_stats(g[:, 0] / g[:, -1], (SIGMA_SQ[init] / 2) ** (d - 1))
        out[str(d)] = {"net": net, "square": square, "layers": layers}
    return out


# --------------------------------------------------------------------------- figures


def _median_band(ys: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Median over seeds (rows) of each column and its percentile-bootstrap 95% CI."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, ys.shape[0], (n_boot, ys.shape[0]))
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            boot = np.nanmedian(ys[idx], axis=1)
            lo, hi = np.nanpercentile(boot, [2.5, 97.5], axis=0)
            med = np.nanmedian(ys, 0)
    return med, lo, hi


def _filled(curve: np.ndarray, diverged: bool) -> np.ndarray:
    """An error curve for the figure: a run stopped at the target keeps its last error; a
    diverged run reads 1 (a failure) from where it diverged."""
    y = np.asarray(curve, np.float64).copy()
    bad = ~np.isfinite(y)
    if bad.any():
        if diverged:
            y[bad] = 1.0
        else:
            last = np.flatnonzero(~bad)
            y[bad] = y[last[-1]] if last.size else np.nan
    return y


COLORS = {"xavier_normal": "tab:red", "he_normal": "tab:blue"}


def _plot_curves(ctx: Context, s: dict[str, Any], pairs, sp) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depths = list(s["by_depth"])
    fig, axes = plt.subplots(1, len(depths), figsize=(5.5 * len(depths), 4), squeeze=False)
    line = s["noise"]["line"]
    for j, depth in enumerate(depths):
        ax = axes[0, j]
        for init in INITS:
            g = s["by_depth"][depth].get(init)
            rs = [(r, c) for r, c in pairs if r["depth"] == int(depth) and r["init"] == init]
            rs = [(r, c) for r, c in rs if "eval_error" in c]
            if g is None or not rs:
                continue
            ys = np.stack([_filled(c["eval_error"], bool(r.get("diverged"))) for r, c in rs])
            steps = np.asarray(rs[0][1]["eval_steps"])
            med, lo, hi = _median_band(ys)
            lr = g["lr"]
            ax.plot(steps, med, color=COLORS[init], lw=2, label=f"{LABEL[init]}, lr {lr:g}")
            ax.fill_between(steps, lo, hi, color=COLORS[init], alpha=0.2)
        ax.axhline(sp["target"], color="k", ls=":", lw=1, label=f"target {sp['target']:g}")
        ax.axhline(line, color="gray", ls="--", lw=1, label=f"chance - noise ({line:.3f})")
        ax.axvline(
            s["stall_fraction"] * s["steps"],
            color="gray",
            ls="-.",
            lw=0.8,
            label=f"stall window ({s['stall_fraction']:.0%} of budget)",
        )
        ax.set(
            ylim=(0, 1),
            xlabel="SGD step",
            ylabel="training error (evaluation subset)",
            title=f"{depth} layers (ReLU MLP, width {sp['width']})",
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        "Measurement seeds at the lr each stall is read at: median, 95% bootstrap CI "
        "(stopped runs hold their last error; diverged runs read 1)"
    )
    return save_figure(ctx, fig, "curves.png")


def _plot_lr(ctx: Context, s: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depths = list(s["by_depth"])
    fig, axes = plt.subplots(1, len(depths), figsize=(5 * len(depths), 3.6), squeeze=False)
    for j, depth in enumerate(depths):
        ax = axes[0, j]
        for init in INITS:
            g = s["by_depth"][depth].get(init)
            if not g:
                continue
            lrs = [x["lr"] for x in g["lr_search"]]
            err = [x["min_error_median"] for x in g["lr_search"]]
            ax.plot(lrs, err, "o-", color=COLORS[init], label=LABEL[init])
            div = [x["lr"] for x in g["lr_search"] if x["diverged"]]
            ax.plot(div, [1.0] * len(div), "x", color=COLORS[init], ms=9, mew=2)
            ax.axvline(g["lr"], color=COLORS[init], ls=":", lw=1)
        ax.axhline(s["noise"]["line"], color="gray", ls="--", lw=1, label="chance - noise")
        ax.set(
            xscale="log",
            ylim=(0, 1.05),
            xlabel="learning rate",
            ylabel="lowest training error (median, tuning seeds)",
            title=f"{depth} layers",
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        "lr search on the tuning seeds; x: every run diverged (plotted at 1); dotted: tuned lr"
    )
    return save_figure(ctx, fig, "lr_search.png")


def _plot_grad(ctx: Context, s: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depths = [d for d in s["by_depth"] if s["by_depth"][d].get("grad_at_init")]
    fig, axes = plt.subplots(
        1, max(1, len(depths)), figsize=(5 * max(1, len(depths)), 3.8), squeeze=False
    )
    for j, depth in enumerate(depths):
        ax, L = axes[0, j], int(depth)
        layers = s["by_depth"][depth]["grad_at_init"]["layers"]
        x = np.arange(1, L + 1)
        for init in INITS:
            c = layers[init]
            ci = np.array([v if v else (np.nan, np.nan) for v in c["ci"]], np.float64)
            ax.errorbar(
                x,
                c["mean"],
                yerr=[np.subtract(c["mean"], ci[:, 0]), np.subtract(ci[:, 1], c["mean"])],
                fmt="o",
                ms=3,
                color=COLORS[init],
                label=f"{LABEL[init]} (measured)",
            )
            ax.plot(
                x,
                (SIGMA_SQ[init] / 2) ** (L - x),
                "--",
                color=COLORS[init],
                lw=1,
                label=f"{init.split('_')[0]} theory (sigma_w^2/2)^(L-l)",
            )
        ax.set(
            yscale="log",
            xlabel="hidden layer l (1 = bottom)",
            ylabel="mean sq. dLoss/dh_l / top layer",
            title=f"{depth} layers at init (seed mean, 95% CI)",
        )
        ax.legend(fontsize=7)
    return save_figure(ctx, fig, "gradient_at_init.png")


# --------------------------------------------------------------------------- report


def report(ctx: Context, sp: dict[str, Any], s: dict[str, Any], figs: list[str]) -> dict[str, Any]:
    """REPORT.md and summary.json from the summary (every number in the text comes from it)."""
    budget, target, width = s["steps"], s["target"], sp["width"]
    rows, ratio_rows, lr_rows, grad_rows = [], [], [], []
    for depth, d in s["by_depth"].items():
        for init in INITS:
            g = d.get(init)
            if g is None:
                continue
            onsets = ", ".join("-" if o is None else str(o) for o in g["onset_per_seed"])
            rows.append(
                [
                    depth,
                    LABEL[init],
                    f"{g['lr']:g}" + ("" if g["bracket_closed"] else " (open)"),
                    f"{g['stalled']}/{g['n_stall_runs']} {fmt_interval(g['stall_share_ci'], 2)}",
                    fmt_km(g["onset"], budget),
                    onsets,
                    fmt_km(g, budget),
                    f"{g['reached']}/{g['n']} ({g['failed']} failed)",
                    f"{g['final_error_median']:.3f}",
                ]
            )
            lr_rows.append(
                [
                    depth,
                    LABEL[init],
                    ", ".join(
                        f"{x['lr']:g}: "
                        + (
                            f"{x['diverged']}/{x['n']} diverged"
                            if x["diverged"]
                            else f"{x['learned']}/{x['n']} learned "
                            f"(min err {x['min_error_median']:.2f})"
                        )
                        for x in g["lr_search"]
                    ),
                ]
            )
            gi = d.get("grad_at_init") or {}
            if gi:
                n, q = gi["net"][init], gi["square"].get(init)
                grad_rows.append(
                    [
                        depth,
                        LABEL[init],
                        f"2^{n['log2_theory']:.0f} = {n['theory']:.3g}",
                        f"{n['mean']:.3g} (x{n['over_theory']:.2f} "
                        f"{fmt_interval(n['over_theory_ci'], 2)})",
                        (
                            f"{q['mean']:.3g} (x{q['over_theory']:.2f} "
                            f"{fmt_interval(q['over_theory_ci'], 2)})"
                            if q
                            else "-"
                        ),
                    ]
                )
        ratio_rows.append([depth, fmt_ratio(d["ratio_xavier_over_he"])])
    table = md_table(
        [
            "depth",
            "init",
            "tuned lr",
            "stalled runs [95% CI of share]",
            "KM median onset [95% CI]",
            "onset per seed (-: none)",
            f"KM median steps to {target:g} [95% CI]",
            "seeds reached",
            "median final error",
        ],
        rows,
    )
    lr_table = md_table(["depth", "init", "tuning runs per lr tried"], lr_rows)
    grad_table = md_table(
        [
            "depth",
            "init",
            "theory (sigma_w^2/2)^(L-1)",
            "trained net (diagnostics.at_init): seed mean (x theory [95% CI])",
            "square net (bench.attenuation)",
        ],
        grad_rows,
    )
    ratio_table = md_table(["depth", "Xavier/He steps to target [95% CI]"], ratio_rows)
    nz = s["noise"]
    gs = s.get("grad_spec", {})
    setup = f"""
Data: {sp["dataset"]}. Model: fully connected ReLU network (bench.models MLP) with
{" and ".join(str(d) for d in sp["depth"])} hidden layers of width {width} (input -> width,
depth-1 square layers, linear head), zero biases, no normalisation. Inits: Xavier normal
(Var W = 2/(fan_in + fan_out), = 1/{width} on the square layers: He et al.'s "Xavier" variant)
and He normal (Var W = 2/fan_in), both truncated normal rescaled to the exact variance.
Optimiser: SGD with momentum {sp["momentum"]}, batch {sp["batch_size"]}, {budget} steps. Training
error on the first {sp["eval_size"]} training examples every {sp["eval_every"]} steps; target
{target:g}; a run stops once its error has been at or below it for {sp["early_exit"]} evaluations
in a row (it has had its onset by then).

**Onset and stall** (defined from the data, not a constant): the best constant guess errs on
{nz["chance"]:.3f} of the {nz["n"]} evaluation examples (1 - the largest class share); an error
measured on {nz["n"]} examples has binomial SE sqrt(c(1-c)/n) = {nz["se"]:.4f}, so a net beats
chance beyond noise when its error is <= {nz["line"]:.3f} ({nz["z"]:g} SE below, one-sided: about
0.13% per evaluation, <= 5% over the budget's evaluations for a net that learned nothing). A
run's onset is its first evaluation at or below that line; a run **stalls** when it has no onset
in the first K = {s["stall_fraction"]:.0%} of the budget: half the budget is several times the
onset of every net that trains here, and leaves the second half to show whether a stall is a
late start. Diverged runs stall; runs with no onset are censored at the budget in the KM onset.
Where no tuning lr reaches the target, the protocol (`bench.protocol.lr_score`) ranks a run
stuck at chance above a diverged one, so the search settles on the largest lr that does not
diverge, with a diverging lr above it closing the bracket: the lr most favourable to learning
that does not blow up, where the stall is read.

{protocol_md(s["protocol"])}

Gradient at init: mean over examples and units of (d loss_b / d h_l)^2 per hidden layer; the
statistic is hidden layer 1 over the top hidden layer, one value per seed ({gs.get("seeds", "?")}
seeds, the first {gs.get("examples", "?")} training examples), its seed mean with a bootstrap 95%
CI (theory predicts the expectation). He et al.'s derivation (their Eq. 13-14): each square
layer multiplies it by 1/2 n Var W = sigma_w^2 / 2, so (sigma_w^2/2)^(L-1) = 2^-(L-1) for Xavier
(sigma_w^2 = 1) and 1 for He. Measured in the nets trained here (`bench.diagnostics.at_init`,
softmax cross-entropy on the data) and in `bench.attenuation`'s square nets of the same width
(Gaussian input, a random linear loss, same depth).
"""
    st, head = verdict(s)
    deep = s["by_depth"][max(s["by_depth"], key=int)].get("grad_at_init") or {}
    square = [
        f"{init.split('_')[0]} x{fmt_num(c['over_theory'])} {fmt_interval(c['over_theory_ci'])}"
        for init, c in deep.get("square", {}).items()
    ]
    sq_txt = (
        "In `bench.attenuation`'s square nets, where the loss is a random linear function "
        "independent of the weights as the derivation assumes, the same ratio at the largest "
        f"depth is {', '.join(square)} of the theory. In the trained nets the top gradient comes "
        "from the softmax cross-entropy, which depends on the forward pass; that dependence, "
        "absent from the derivation, is a likely source of the gap (not isolated here)."
        if square
        else ""
    )
    verdict_md = f"""
**{st.capitalize()}.** {head}

{sq_txt}

Conditions: plain ReLU MLP of width {width} on {sp["dataset"]}, momentum SGD, each init at its
own tuned lr, {budget} steps. He et al.'s nets were convolutional (fan_in = k^2 c, wider),
trained on ImageNet for far longer. Under Xavier the gradient reaching the first hidden layer is
2^-(depth-1) of the top one's at init (measured above), so whether a net "stalls" depends on the
budget; the stall window K and the noise line are stated in the setup.
"""
    data = {**s, "status": st, "results_bytes": dir_size(ctx.out_dir)}
    results_md = (
        f"{ratio_table}\n\n{table}\n\n"
        + summary._LEGEND
        + "\n\n### The lr search: does Xavier stall at every lr?\n\n"
        + "Tuning seeds; learned: the lowest training error in the budget beat the noise line.\n\n"
        + lr_table
        + "\n\n### Gradient at init against He et al.'s theory\n\n"
        + grad_table
    )
    return write_report(
        ctx,
        title=TITLE,
        claim=CLAIM,
        setup=setup,
        results_md=results_md,
        verdict=verdict_md,
        figures=figs,
        config={**sp, "gradient_at_init": gs},
        data=clean(data),
        answer=answer(s, st),
    )


def _run_key(r: Mapping[str, Any]) -> tuple:
    return (r["depth"], r["init"], float(r["lr"]), r["seed"])


def run(ctx: Context) -> dict[str, Any]:
    from bench import data

    sp, gs = spec(ctx.size, ctx.data_dir), grad_spec(ctx.size)
    ds = data.load(sp["dataset"], data_dir=ctx.data_dir)
    noise = noise_line(np.asarray(ds.y_train[: sp["eval_size"]]))
    grads = measure_gradients(sp, gs, ds)
    t = tuned_sweep(ctx, sp)
    pairs = measured_curves(t)
    # measured_curves' records carry no stage: tag them
    onsets = {
        _run_key(r): onset_step(c["eval_steps"], c["eval_error"], noise["line"])
        for r, c in pairs
        if "eval_error" in c
    }
    records = [
        {**r, "onset": onsets.get(_run_key(r))} if r["stage"] == "measure" else r for r in t.records
    ]
    s = analyse(records, t.protocol, sp, noise, grads)
    s["run_dir"] = str(t.root)
    s["grad_spec"] = gs
    figs = [_plot_curves(ctx, s, pairs, sp), _plot_lr(ctx, s), _plot_grad(ctx, s)]
    slim_stages(t, every=10)
    return report(ctx, sp, s, figs)
