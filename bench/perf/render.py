"""REPORT.md from a perf.json: one function per section, composed by ``render``.

Each section function takes its part of the results and returns its markdown lines and its
targets, (name, holds, measured); ``render`` joins the sections and ends with the targets
table, each a PASS or a MISS with the measured number. Nothing here measures anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bench.perf.activations import (
    ACT_TIME_TARGET,
    RESIDUAL_REASONS,
    TIME_REASONS,
    activation_verdict,
)
from bench.perf.cnn import VS_TORCH_CNN, VS_TORCH_CNN_CHANNELS
from bench.perf.compile_time import COMPILE_TARGET
from bench.perf.mfu import MFU_TARGET
from bench.perf.sweeps import VS_BEST_STRATEGY, VS_NAIVE_JAX, VS_TORCH_FUNC, VS_TORCH_LOOP

Target = tuple[str, bool, str]  # (target, holds, measured)
Section = tuple[list[str], list[Target]]


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _fmt_bytes(b: int | None) -> str:
    return "n/a" if b is None else f"{b / 2**20:.2f} MiB" if b >= 2**20 else f"{b} B"


def render(res: Mapping[str, Any]) -> str:
    """The report of a whole run, or of a partial one (perf.partial.json: the sections up to
    the MFU, then the targets so far)."""
    sections = [_activations(res["activations"])]
    sections += [_sweep(s, res["matmul"]["peak"]) for s in res.get("sweeps", [])]
    sections.append(_mfu(res))
    partial = "compile" not in res or "cnn" not in res
    if not partial:
        sections += [_compile(res["compile"]), _cnn(res["cnn"])]
        if "cnn_vs_torch" in res:
            sections.append(_cnn_vs_torch(res["cnn_vs_torch"], res["matmul"]["peak"]))
        if "cnn_conv_layers" in res:
            sections.append(_conv_layers(res["cnn_conv_layers"]))
        if "cnn_groups" in res:
            sections.append(_cnn_groups(res["cnn_groups"]))
        if "startup" in res:
            sections.append(_startup(res["startup"]))
        if "early_exit" in res:
            sections.append(_early_exit(res["early_exit"]))
        if "gpu_vmap" in res:
            sections.append(_gpu_vmap(res["gpu_vmap"]))
    L = _machine(res)
    targets: list[Target] = []
    for lines, ts in sections:
        L += lines
        targets += ts
    L += ["## Targets", "", "| target | measured | verdict |", "| --- | --- | --- |"]
    L += [f"| {name} | {got} | {_verdict(ok)} |" for name, ok, got in targets]
    if partial:
        return "\n".join([*L, "", "(partial run: later sections missing)", ""])
    L.append("")
    return "\n".join(L)


def _machine(res: Mapping[str, Any]) -> list[str]:
    """Title, how to read the numbers, and the machine (code, CPU, JAX, PyTorch, peaks)."""
    m = res["machine"]
    return [
        "# Performance report",
        "",
        f"Run {res['started_utc']} in {res.get('wall_s', math.nan):.0f} s. Ratios are "
        "measured side by side in one run (repetitions interleaved, medians of per-round "
        "ratios); absolute times on a shared machine are noisy, the ratios are the result.",
        "",
        "## Machine",
        "",
        f"- Code: git commit {res.get('git_commit') or 'unknown'}"
        + (" with uncommitted changes" if res.get("git_dirty") else "")
        + "; settings in perf.json",
        f"- CPU: {m['cpu_model']}, {m['cpu_cores']} cores",
        f"- JAX {m['jax_version']}, platform {m['platform']} ({m['device_kind']}), devices: "
        f"{', '.join(m['devices'])}",
        f"- The harness shards the configurations over all {len(m['devices'])} device(s)"
        + (
            " (the CPU split into one JAX device per core, `--cpu-devices`); rows marked "
            "`_1device` run the same program on one device. The naive JAX loop and the "
            "one-after-another CNN run on one device, as a user's script would."
            if m["platform"] == "cpu" and len(m["devices"]) > 1
            else "."
        ),
        f"- PyTorch: {m['torch_version'] or 'not installed (torch baselines skipped)'}"
        f" (torch threads: {res.get('torch_threads') or 'default'}; device: "
        f"{res.get('torch_device') or 'cpu'})",
        f"- 1-minute load average at the start: {m.get('loadavg_1m', 'n/a')} "
        "(other processes on the same cores)",
        "- fp32 matmul peak (jit(a @ b), 2 n^3 FLOP): "
        + ", ".join(
            f"{k}^2: {v / 1e9:.1f} GFLOP/s" for k, v in res["matmul"].items() if k != "peak"
        )
        + (
            " (default precision: TF32 tensor cores where the backend allows, as in the harness)"
            if m["platform"] == "gpu"
            else ""
        ),
        *(
            f"- {name} matmul peak: "
            + ", ".join(f"{k}^2: {v / 1e9:.1f} GFLOP/s" for k, v in mm.items() if k != "peak")
            for name, mm in res.get("matmul_variants", {}).items()
        ),
        "",
    ]


def _activations(rows: list[Mapping[str, Any]]) -> Section:
    """One row per activation: the ratio at each size, the residuals at the largest, and why
    each miss misses."""
    L = [
        "## Activations: jit forward+backward, ours / jax.nn (float32)",
        "",
        f"Target: time ratio <= {ACT_TIME_TARGET} at every size, residual bytes <= jax.nn's. "
        "Residual = the arrays the forward pass keeps for the backward pass. Ratio: median of "
        "the per-round ratios (the verdict) / ratio of the best times of the k rounds (less "
        "sensitive to other processes' load).",
        "",
    ]
    sizes = sorted({r["n"] for r in rows})
    head = "| activation | " + " | ".join(
        f"ratio 2^{int(math.log2(n))} (median / best)" for n in sizes
    )
    head += " | residual ours | residual jax.nn | verdict |"
    L += [head, "|" + " --- |" * (len(sizes) + 4)]
    names = list(dict.fromkeys(r["activation"] for r in rows))
    misses = []
    for name in names:
        rs = [r for r in rows if r["activation"] == name]
        big = max(rs, key=lambda r: r["n"])
        oks, reasons = [], []
        for r in rs:
            t_ok, r_ok, reason = activation_verdict(r)
            oks.append(t_ok and r_ok)
            if reason:
                reasons.append(f"2^{int(math.log2(r['n']))}: {reason}")
        ok = all(oks)
        if not ok:
            why = RESIDUAL_REASONS.get(name) or TIME_REASONS.get(name)
            misses.append(f"- **{name}**: " + "; ".join(reasons) + (f". Why: {why}" if why else ""))
        L.append(
            f"| {name} | "
            + " | ".join(
                f"{r['ratio']:.3f} / {r.get('ratio_min', math.nan):.3f}"
                for r in sorted(rs, key=lambda r: r["n"])
            )
            + f" | {_fmt_bytes(big['residual_bytes_ours'])} ({big['residual_arrays_ours']})"
            + f" | {_fmt_bytes(big['residual_bytes_jax_nn'])} ({big['residual_arrays_jax_nn']})"
            + f" | {_verdict(ok)} |"
        )
    n_ok = len(names) - len(misses)
    target = (
        "activations: fwd+bwd <= 1.05x jax.nn and residual <= jax.nn",
        not misses,
        f"{n_ok} of {n_ok + len(misses)} pass",
    )
    L += ["", "Residual columns: bytes at the largest size (number of arrays).", ""]
    if misses:
        L += ["Misses:", "", *misses, ""]
    return L, [target]


def _sweep(s: Mapping[str, Any], peak: float) -> Section:
    """One small-MLP sweep: every way's time, the strategies alone, what bounds the MFU."""
    sp = s["speedup_of_harness_auto"]
    L = [
        f"## Small-MLP sweep: N={s['n_configs']}, 40 -> {s['width']} x {s['depth']} -> 10 "
        f"tanh, SGD, batch {s['batch']}, {s['steps']} steps",
        "",
        f"Harness `auto` resolves to `{s['auto_resolves_to']}`. Run time only (compile "
        "excluded for the harness; the naive loop's step is jitted before timing). "
        f"Median of {s['rounds']} interleaved rounds. Speed-up = way's time / harness auto's.",
        "",
        "| way | median s | speed-up of harness auto | max abs diff of final losses |",
        "| --- | --- | --- | --- |",
    ]
    for k, v in s["median_s"].items():
        L.append(f"| {k} | {v:.3f} | {sp[k]:.2f}x | {s['max_abs_loss_diff_vs_harness'][k]:.1e} |")
    L += [
        "",
        "Harness compile s: "
        + ", ".join(f"{k} {v:.2f}" for k, v in s["compile_s"].items() if v)
        + (
            f" (auto shares the {s['auto_resolves_to']} program)"
            if not s["compile_s"]["auto"]
            else ""
        )
        + f". Model FLOP/s (auto): {s['model_flop_per_s_auto'] / 1e9:.1f} G "
        f"({s['model_flop_per_s_auto'] / peak:.0%} of peak).",
        "",
    ]
    if "strategy_median_s" in s:
        L += [
            f"The strategies alone ({s['strategy_rounds']} more interleaved rounds of the "
            "distinct programs; auto is the program it resolves to): "
            + ", ".join(
                f"{k.removeprefix('harness_')} {v:.3f} s" for k, v in s["strategy_median_s"].items()
            )
            + f"; auto / best = {s['auto_vs_best_strategy']:.3f} (median of the "
            "per-round ratios to the program with the best median).",
            "",
        ]
    if s.get("mfu_bound"):
        b = s["mfu_bound"]
        L += [
            "What bounds the MFU at this width (a profile by subtraction): the same matmuls "
            "alone (every layer's forward, input- and weight-gradient products at these "
            "shapes, vmapped and sharded as the harness runs them; no activation, loss, "
            "data or optimizer) run at "
            f"{b['matmul_only_flop_per_s'] / 1e9:.1f} GFLOP/s = "
            f"{b['matmul_only_of_peak']:.0%} of the peak, and take "
            f"{b['matmul_share_of_harness']:.0%} of the harness's time. So "
            f"{1 - b['matmul_share_of_harness']:.0%} of a step is the elementwise work "
            "(activation and its derivative, bias, softmax cross-entropy, SGD update, "
            "divergence check), the minibatch gather and the scan, and the matmuls "
            "themselves are limited by their small sizes.",
            "",
        ]
    tag = f"N={s['n_configs']} W={s['width']}"
    targets: list[Target] = []
    for key, target, label in (
        ("torch_loop", VS_TORCH_LOOP, "PyTorch loop"),
        ("naive_jax_loop", VS_NAIVE_JAX, "naive JAX loop"),
        ("torch_func_vmap", VS_TORCH_FUNC, "torch.func vmap"),
    ):
        if key in sp:
            targets.append(
                (
                    f"{tag}: harness >= {target}x faster than {label}",
                    sp[key] >= target,
                    f"{sp[key]:.2f}x",
                )
            )
        else:
            targets.append((f"{tag}: harness vs {label}", False, "not measured (no torch)"))
    a = s["auto_vs_best_strategy"]
    targets.append(
        (
            f"{tag}: auto within 5% of its best strategy",
            a <= VS_BEST_STRATEGY,
            f"auto / best = {a:.3f}",
        )
    )
    return L, targets


def _mfu(res: Mapping[str, Any]) -> Section:
    """The harness's model-FLOP utilisation at each width, against each measured peak."""
    L = [
        "## Model-FLOP utilisation (harness auto)",
        "",
        "Model FLOPs = 6 * P * batch * steps * N, P = sum of in*out over the dense layers "
        "(2 in out per example forward, x3 for forward+backward); biases, activations, loss, "
        "optimizer and the final evaluation are not counted.",
        "",
    ]
    # MFU against the other measured peaks (bf16 ...), when the settings measured them
    extra = list(res.get("matmul_variants", {}))
    L += [
        "| width | N | steps | strategy | median s | model GFLOP/s | MFU | "
        + "".join(f"MFU vs {k} peak | " for k in extra)
        + "verdict |",
        "|" + " --- |" * (8 + len(extra)),
    ]
    targets: list[Target] = []
    for r in res.get("mfu", []):
        ok = r["mfu"] >= MFU_TARGET
        L.append(
            f"| {r['width']} | {r['n_configs']} | {r['steps']} | {r['strategy']} | "
            f"{r['median_s']:.3f} | {r['model_flop_per_s'] / 1e9:.1f} | {r['mfu']:.0%} | "
            + "".join(f"{r.get('mfu_vs', {}).get(k, math.nan):.1%} | " for k in extra)
            + f"{_verdict(ok)} |"
        )
        targets.append((f"MFU >= 50% at width {r['width']}", ok, f"{r['mfu']:.0%}"))
    L.append("")
    return L, targets


def _compile(c: Mapping[str, Any]) -> Section:
    """Compile seconds at each depth."""
    L = [
        "## Compile time (trace + lower + compile of the harness program, MLP width 64)",
        "",
        "| depth | " + " | ".join(c["compile_s"]) + " |",
        "|" + " --- |" * (len(c["compile_s"]) + 1),
        "| seconds | " + " | ".join(f"{v:.2f}" for v in c["compile_s"].values()) + " |",
        "",
    ]
    ok = c["ratio_200_over_4"] <= COMPILE_TARGET
    return L, [("compile time depth 200 <= 1.5x depth 4", ok, f"{c['ratio_200_over_4']:.2f}x")]


def _cnn(cn: Mapping[str, Any]) -> Section:
    """The CNN: harness against one after another, and its MFU."""
    L = [
        f"## CNN (MNIST-1D, channels {cn['channels']}, {cn['steps']} steps, N={cn['n_configs']})",
        "",
        f"Harness auto resolves to `{cn['strategy']}`; one after another = one jitted whole-run "
        "`train` called per configuration. "
        + ", ".join(f"{k}: {v:.3f} s" for k, v in cn["median_s"].items())
        + f"; speed-up of the harness {cn['speedup_of_harness_auto']:.2f}x.",
        "",
    ]
    if cn.get("mfu"):
        L += [
            f"Model FLOPs (3 x the forward pass's convolution and matmul FLOPs per step, counted "
            f"from its jaxpr) {cn['model_flops'] / 1e9:.2f} G: the harness runs "
            f"{cn['model_flop_per_s'] / 1e9:.1f} GFLOP/s, MFU "
            + ", ".join(f"{v:.2%} of the {k} peak" for k, v in cn["mfu"].items())
            + ".",
            "",
        ]
    # "never slower": allow 5% timing noise on a shared machine
    ok = cn["speedup_of_harness_auto"] >= 1 / 1.05
    target = (
        "CNN: harness never slower than one after another (5% noise allowed)",
        ok,
        f"{cn['speedup_of_harness_auto']:.2f}x",
    )
    return L, [target]


def _shape(r: Mapping[str, Any]) -> str:
    return "x".join(map(str, r["shape"])) + ", " + "-".join(map(str, r["channels"]))


def _cnn_target(r: Mapping[str, Any], n: int, ratio_key: str) -> list[Target]:
    if ratio_key not in r or tuple(r["channels"]) not in VS_TORCH_CNN_CHANNELS:
        return []
    if list(r["shape"]) != [28, 28, 1]:
        return []
    name = f"CNN step {_shape(r)}, {n} config(s): <= {VS_TORCH_CNN}x fastest PyTorch"
    return [(name, r[ratio_key] <= VS_TORCH_CNN, f"{r[ratio_key]:.2f}x ({r['torch_best']})")]


def _cnn_vs_torch(rows: list[Mapping[str, Any]], peak: float) -> Section:
    """One CNN configuration: the harness, its pooling variants and PyTorch's forms."""
    L = [
        "## CNN training step against PyTorch (one configuration)",
        "",
        "3 x (conv 5x5 SAME -> ReLU -> max-pool 3/2 SAME) -> linear 10, SGD momentum 0.9, "
        "batch 128, random images; ms per step. Harness: the compiled group program as a sweep "
        "runs it, on one device, divided by its steps; `xla pool`: the same with "
        "`lax.reduce_window` max-pool (autodiff backward); `no pool`: a strided slice in its "
        "place; `jitted step`: the same step jitted and called from Python. PyTorch: best of "
        "default threads / 1 thread x NCHW / channels_last, eager. Pool share = 1 - no pool / "
        "harness; MFU against the fp32 matmul peak of this run.",
        "",
        "| input, channels | harness | xla pool | no pool | jitted step | PyTorch best "
        "| harness / PyTorch | GFLOP/s | MFU | pool share |",
        "|" + " --- |" * 10,
    ]
    targets: list[Target] = []
    for r in rows:
        ms = r["ms_per_step"]
        torch = (
            f"{ms['torch:' + r['torch_best']]:.1f} ({r['torch_best']})"
            if "torch_best" in r
            else "n/a"
        )
        ratio = f"{r['harness_over_torch']:.2f}x" if "harness_over_torch" in r else "n/a"
        L.append(
            f"| {_shape(r)} | {ms['harness']:.1f} | {ms.get('harness_xla_pool', math.nan):.1f} "
            f"| {ms.get('harness_no_pool', math.nan):.1f} "
            f"| {ms.get('jitted_step_loop', math.nan):.1f} "
            f"| {torch} | {ratio} | {r['harness_gflop_per_s']:.1f} "
            f"| {r['harness_gflop_per_s'] * 1e9 / peak:.1%} | {r.get('pool_share', math.nan):.0%} |"
        )
        targets += _cnn_target(r, 1, "harness_over_torch")
    L.append("")
    forms = sorted(
        {k.removeprefix("torch:") for r in rows for k in r["ms_per_step"] if k.startswith("torch:")}
    )
    if forms:
        L += ["PyTorch forms (ms per step):", "", "| input, channels | " + " | ".join(forms) + " |"]
        L.append("|" + " --- |" * (len(forms) + 1))
        for r in rows:
            cells = [f"{r['ms_per_step'].get('torch:' + f, math.nan):.1f}" for f in forms]
            L.append(f"| {_shape(r)} | " + " | ".join(cells) + " |")
        L.append("")
    return L, targets


def _conv_layers(rows: list[Mapping[str, Any]]) -> Section:
    """The step's convolutions one by one: XLA (the harness's rules) against PyTorch."""
    L = [
        "## The CNN step's convolutions, layer by layer (the profile of what bounds the step)",
        "",
        "Each jitted alone on one device, batch 128, 5x5 SAME; PyTorch: default threads, "
        "channels_last, `forward + backward` = the forward with its graph and both gradients. "
        "ms (GFLOP/s of the forward).",
        "",
        "| input -> channels | XLA forward | XLA input grad | XLA weight grad | PyTorch forward "
        "| PyTorch forward + backward | XLA sum / PyTorch |",
        "|" + " --- |" * 7,
    ]
    for r in rows:
        ms = r["ms"]
        gf = r["flops"] / 1e6

        def cell(k: str, ms: Mapping[str, float] = ms, gf: float = gf) -> str:
            return f"{ms[k]:.1f} ({gf / ms[k]:.0f})" if k in ms else "n/a"

        L.append(
            f"| {'x'.join(map(str, r['input']))} -> {r['c_out']} | {cell('xla_forward')} "
            f"| {ms['xla_input_grad']:.1f} | {ms['xla_weight_grad']:.1f} | {cell('torch_forward')} "
            f"| {ms.get('torch_backward_with_forward', math.nan):.1f} "
            f"| {r.get('xla_over_torch', math.nan):.2f}x |"
        )
    L.append("")
    return L, []


def _cnn_groups(rows: list[Mapping[str, Any]]) -> Section:
    """N CNN configurations: each way of running them, auto's pick, PyTorch."""
    L = ["## N CNN configurations on the CPU", ""]
    targets: list[Target] = []
    for r in rows:
        ms = r["ms_per_config_step"]
        ways = [k for k in ms if not k.startswith("torch:")]
        L += [
            f"{_shape(r)}, N = {r['n_configs']} on {r['n_devices']} device(s), ms per "
            f"configuration-step: "
            + ", ".join(f"{k} {ms[k]:.1f}" for k in ways)
            + f". auto runs `{r['auto']}` ({r['auto_over_fastest']:.2f}x the fastest, "
            f"`{r['fastest_harness']}`), {r['auto_gflop_per_s']:.1f} GFLOP/s."
            + (
                " PyTorch, the N one after another: "
                + ", ".join(
                    f"{k.removeprefix('torch:')} {v:.1f}"
                    for k, v in ms.items()
                    if k.startswith("torch:")
                )
                + f"; auto / fastest PyTorch {r['auto_over_torch']:.2f}x."
                if "torch_best" in r
                else ""
            ),
            "",
        ]
        targets += _cnn_target(r, r["n_configs"], "auto_over_torch")
    return L, targets


def _startup(st: Mapping[str, Any]) -> Section:
    """A whole sweep with cold, warm and no disk caches."""
    sets = " ".join(f"--set {s}" for s in st["sets"])
    L = [
        "## Start-up: a whole sweep, first and second run",
        "",
        f"`python -m bench sweep {st['config']} {sets}`".replace(" `", "`").strip()
        + f" in fresh processes with a fresh cache root: first run (data generated, every group "
        f"compiled) {st['first_s']:.1f} s; second run (data and {st['compilation_cache_files']} "
        f"compiled-program files loaded from disk) {st['second_s']:.1f} s "
        f"({st['second_over_first']:.2f}x); with ACTIVATIONS_BENCH_NO_DISK_CACHE=1 "
        f"{st['cache_off_s']:.1f} s.",
        "",
    ]
    return L, []


def _early_exit(ee: Mapping[str, Any]) -> Section:
    """Early exit against the full budget and the steps actually needed."""
    L = [
        "## Early exit against the full budget",
        "",
        f"{ee['n_configs']} configurations, budget {ee['budget_steps']} steps "
        f"({ee['budget_over_median_trained']:.1f}x the median steps they trained), "
        f"early_exit = {ee['early_exit']}; steps trained {ee['steps_trained']}. Run seconds "
        "(median of interleaved rounds): "
        + ", ".join(f"{k}: {v:.3f} s" for k, v in ee["seconds"].items())
        + f". The full budget took {ee['full_over_early']:.2f}x the early-exit run; early "
        f"exit took {ee['early_over_needed']:.2f}x the time of the steps actually needed "
        f"(the slowest lane's, {ee['needed_steps']}).",
        "",
    ]
    target = (
        f"early exit within {ee['target']}x of the steps actually needed",
        bool(ee["ok"]),
        f"{ee['early_over_needed']:.2f}x",
    )
    return L, [target]


def _gpu_vmap(g: Mapping[str, Any]) -> Section:
    """The GPU's vmap against one after another (no target)."""
    L = [
        f"## GPU: vmap of {g['n_configs']} small configurations vs one after another",
        "",
        f"speed-up {g['speedup_vmap_over_sequential']:.2f}x "
        + ", ".join(f"{k}: {v:.3f} s" for k, v in g["median_s"].items()),
        "",
    ]
    return L, []
