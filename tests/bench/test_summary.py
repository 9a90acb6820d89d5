"""bench.summary on synthetic records whose answers are known in advance."""

import json
import math

import numpy as np
import pytest

from bench import summary as sm

BUDGET = 1000


def rec(activation, lr, seed, steps, **kw):
    """One record as the sweep writes it; ``steps=None`` means the target was never reached."""
    r = {
        "activation": activation,
        "lr": lr,
        "seed": seed,
        "depth": 4,
        "width": 64,
        "model": "mlp",
        "init": "lecun_normal",
        "init_scale": 1.0,
        "bias_init": 0.0,
        "slope": None,
        "optimizer": "sgd",
        "target": 0.25,
        "steps": BUDGET,
        "eval_every": 25,
        "steps_to_target": steps,
        "reached": steps is not None,
        "final_train_error": 0.1 if steps is not None else 0.5,
        "min_train_error": 0.1 if steps is not None else 0.4,
        "diverged": False,
        "divergence_step": -1,
        "status": "done",
        "git_commit": "abc1234",
    }
    r.update(kw)
    r.setdefault("group", f"{activation}-d{r['depth']}")
    r.setdefault("config_id", f"{r['group']}-lr{lr}-s{seed}-sl{r['slope']}")
    return r


def runs(activation, lr, steps_per_seed, **kw):
    return [rec(activation, lr, s, v, **kw) for s, v in enumerate(steps_per_seed)]


def only_setting(summary):
    (s,) = summary["settings"]
    return s


# --------------------------------------------------------------------------- ratios


def test_exact_ratio_six_with_degenerate_ci():
    records = runs("relu", 0.1, [100] * 5) + runs("tanh", 0.1, [600] * 5)
    s = only_setting(sm.summarize(records))
    rp = s["reference_pair"]
    assert (rp["numerator"], rp["denominator"]) == ("tanh", "relu")
    assert rp["ratio"] == 6.0 and rp["ci"] == [6.0, 6.0]
    assert rp["bound"] == "exact" and rp["ci_bound"] == "exact"
    assert list(s["groups"]) == ["relu", "tanh"]  # fastest first
    assert s["reference_label"] == "relu" and s["vs_reference"]["tanh"] == rp
    assert s["groups"]["tanh"]["median_steps"] == 600 and s["groups"]["tanh"]["n_reached"] == 5
    assert s["pairs"] == [rp]


def test_noisy_seeds_ci_contains_the_point_estimate_and_is_reproducible():
    rng = np.random.default_rng(0)
    records = runs("relu", 0.1, [int(v) for v in rng.integers(80, 130, 8)])
    records += runs("tanh", 0.1, [int(v) for v in rng.integers(450, 800, 8)])
    a = only_setting(sm.summarize(records, n_boot=500, seed=1))["reference_pair"]
    b = only_setting(sm.summarize(records, n_boot=500, seed=1))["reference_pair"]
    assert a == b
    lo, hi = a["ci"]
    assert lo < a["ratio"] < hi and lo > 1
    relu = np.median([r["steps_to_target"] for r in records if r["activation"] == "relu"])
    tanh = np.median([r["steps_to_target"] for r in records if r["activation"] == "tanh"])
    assert a["ratio"] == pytest.approx(tanh / relu)


def test_all_pairs_oriented_slower_over_faster():
    records = runs("relu", 0.1, [100] * 3) + runs("tanh", 0.1, [300] * 3)
    records += runs("gelu", 0.1, [200] * 3)
    s = only_setting(sm.summarize(records, n_boot=10))
    got = {(p["numerator"], p["denominator"]): p["ratio"] for p in s["pairs"]}
    assert got == {("gelu", "relu"): 2.0, ("tanh", "relu"): 3.0, ("tanh", "gelu"): 1.5}


def test_reference_falls_back_to_fastest_without_relu():
    records = runs("elu", 0.1, [200] * 3) + runs("gelu", 0.1, [100] * 3)
    s = only_setting(sm.summarize(records, n_boot=10))
    assert s["reference_label"] == "gelu" and s["reference_pair"] is None
    assert s["vs_reference"]["elu"]["ratio"] == 2.0


# --------------------------------------------------------------------------- best learning rate


def test_best_lr_when_grids_differ_between_activations():
    records = (
        runs("relu", 0.01, [500] * 3)
        + runs("relu", 0.1, [100, 120, 110])
        + runs("relu", 1.0, [None] * 3)
        + runs("tanh", 0.003, [900] * 3)
        + runs("tanh", 0.03, [600] * 3)
    )
    s = only_setting(sm.summarize(records, n_boot=50))
    relu, tanh = s["groups"]["relu"], s["groups"]["tanh"]
    assert relu["best_lr"] == 0.1 and relu["median_steps"] == 110
    assert relu["lr_grid"] == [0.01, 0.1, 1.0] and not relu["best_lr_at_edge"]
    assert tanh["best_lr"] == 0.03 and tanh["best_lr_at_edge"]
    assert s["reference_pair"]["ratio"] == pytest.approx(600 / 110)
    assert [x["median_steps"] for x in relu["by_lr"]] == [500, 110, None]


def test_censored_seeds_rank_last_in_the_median():
    records = (
        runs("relu", 1.0, [50, 50, None, None, None])  # fast seeds, but most never get there
        + runs("relu", 0.5, [40, 40, 40, None, None])  # the median run reaches it
        + runs("relu", 0.1, [300] * 5)
    )
    g = only_setting(sm.summarize(records, n_boot=10))["groups"]["relu"]
    assert g["best_lr"] == 0.5 and g["median_steps"] == 40 and g["n_reached"] == 3
    assert g["steps_to_target"] == [40, 40, 40, None, None]  # nothing dropped
    assert g["by_lr"][2] == {
        "lr": 1.0,
        "median_steps": None,
        "n_reached": 2,
        "n_seeds": 5,
        "n_diverged": 0,
        "mean_final_error": pytest.approx(0.34),
    }


def test_diverged_runs_count_as_censored():
    div = dict(diverged=True, divergence_step=30)
    records = runs("relu", 1.0, [10] * 4, **div) + runs("relu", 0.1, [200] * 4)
    g = only_setting(sm.summarize(records, n_boot=10))["groups"]["relu"]
    assert g["best_lr"] == 0.1
    fast = g["by_lr"][1]
    assert fast["median_steps"] is None and fast["n_reached"] == 0 and fast["n_diverged"] == 4


def test_nothing_reached_picks_the_lowest_final_error():
    records = runs("relu", 0.1, [None] * 3, final_train_error=0.6)
    records += runs("relu", 0.3, [None] * 3, final_train_error=0.4)
    g = only_setting(sm.summarize(records, n_boot=10))["groups"]["relu"]
    assert g["best_lr"] == 0.3 and g["median_steps"] is None
    assert g["median_steps_lower"] == BUDGET


# --------------------------------------------------------------------------- censored ratios


def test_censored_numerator_gives_a_lower_bound():
    records = runs("relu", 0.1, [100] * 4) + runs("tanh", 0.1, [None] * 4)
    s = sm.summarize(records, n_boot=100)
    rp = only_setting(s)["reference_pair"]
    # tanh never reached the target in 1000 steps: the ratio is at least 1000 / 100.
    assert rp["ratio"] == 10.0 and rp["bound"] == "lower"
    assert rp["ci"] == [10.0, 10.0] and rp["ci_bound"] == "lower"
    table = sm.format_table(s)
    assert ">=10.00 >=[10.00, 10.00]" in table and ">1000 [0/4]" in table


def test_censored_denominator_gives_an_upper_bound():
    records = runs("relu", 0.1, [None] * 3) + runs("tanh", 0.1, [250] * 3)
    rp = only_setting(sm.summarize(records, n_boot=50))["reference_pair"]
    assert rp["ratio"] == 0.25 and rp["bound"] == "upper" and rp["ci_bound"] == "upper"


def test_both_censored_is_undetermined():
    records = runs("relu", 0.1, [None] * 3) + runs("tanh", 0.1, [None] * 3)
    s = sm.summarize(records, n_boot=50)
    rp = only_setting(s)["reference_pair"]
    assert rp["ratio"] is None and rp["bound"] == "undetermined"
    assert rp["ci_bound"] == "undetermined"
    assert "n/a (both censored)" in sm.format_table(s)


def test_one_censored_seed_keeps_the_point_exact_but_bounds_the_ci():
    records = runs("relu", 0.1, [100] * 5) + runs("tanh", 0.1, [600, 600, 600, 600, None])
    rp = only_setting(sm.summarize(records, n_boot=400))["reference_pair"]
    assert rp["ratio"] == 6.0 and rp["bound"] == "exact"
    assert rp["ci_bound"] == "lower" and rp["ci"][1] == 10.0  # resamples with 3+ censored


# --------------------------------------------------------------------------- grouping


def test_settings_are_compared_separately():
    records = runs("relu", 0.1, [100] * 3, depth=4) + runs("tanh", 0.1, [100] * 3, depth=4)
    records += runs("relu", 0.1, [700] * 3, depth=16) + runs("tanh", 0.1, [100] * 3, depth=16)
    s = sm.summarize(records, n_boot=20)
    assert [x["setting"]["depth"] for x in s["settings"]] == [4, 16]  # numeric order
    assert [x["reference_pair"]["ratio"] for x in s["settings"]] == [1.0, 1 / 7]
    table = sm.format_table(s)
    assert "depth=4" in table and "depth=16" in table and "common: " in table
    only16 = sm.summarize(records, conditions={"depth": [16]}, n_boot=20)
    assert only_setting(only16)["setting"]["depth"] == 16 and only16["n_records"] == 6


def test_slope_is_folded_into_the_label_only_where_it_varies():
    records = runs("relu", 0.1, [100] * 2)
    records += runs("leaky_relu", 0.1, [90] * 2, slope=0.01)
    records += runs("leaky_relu", 0.1, [80] * 2, slope=0.2)
    records += runs("elu", 0.1, [95] * 2, slope=1.0)
    s = only_setting(sm.summarize(records, n_boot=10))
    assert set(s["groups"]) == {"relu", "leaky_relu[slope=0.01]", "leaky_relu[slope=0.2]", "elu"}


def test_by_other_keys():
    records = runs("relu", 0.1, [100] * 2, init="he_normal")
    records += runs("relu", 0.1, [300] * 2, init="lecun_normal")
    s = only_setting(sm.summarize(records, by=("activation", "init"), n_boot=10))
    assert list(s["groups"]) == ["relu/he_normal", "relu/lecun_normal"]
    assert "init" not in s["setting"]
    with pytest.raises(ValueError, match=r"^by: 'lr'"):
        sm.summarize(records, by=("lr",))


def test_a_missing_setting_key_is_detected_not_averaged():
    records = runs("relu", 0.1, [100] * 2, warmup=0) + runs("relu", 0.1, [100] * 2, warmup=10)
    with pytest.raises(ValueError, match=r"^records: two runs .*differ in .*'warmup'"):
        sm.summarize(records)
    s = sm.summarize(records, setting_keys=(*sm.SETTING_KEYS, "warmup"), n_boot=10)
    assert [x["setting"]["warmup"] for x in s["settings"]] == [0, 10]


def test_summary_is_plain_json():
    records = runs("relu", 0.1, [100, None]) + runs("tanh", 0.1, [None, None])
    s = sm.summarize(records, n_boot=20)
    assert json.loads(json.dumps(s, allow_nan=False)) == s


def test_empty():
    s = sm.summarize([])
    assert s["settings"] == [] and sm.format_table(s) == "no records"


# --------------------------------------------------------------------------- table


def test_format_table_content():
    records = runs("relu", 0.1, [100] * 3) + runs("relu", 0.3, [150] * 3)
    records += runs("tanh", 0.1, [600] * 3) + runs("tanh", 0.03, [700] * 3)
    table = sm.format_table(sm.summarize(records, n_boot=50))
    lines = table.splitlines()
    header = next(line for line in lines if line.startswith("activation"))
    assert "best lr" in header and "steps to target [reached/seeds]" in header
    assert "x/relu (95% CI)" in header
    relu = next(line for line in lines if line.startswith("relu "))
    tanh = next(line for line in lines if line.startswith("tanh "))
    assert "0.1*" in relu and "100 [3/3]" in relu and "1 (reference)" in relu
    assert "0.1*" in tanh and "600 [3/3]" in tanh and "6.00 [6.00, 6.00]" in tanh
    assert "tanh/relu = 6.00 [6.00, 6.00] (> 1: relu reaches the target in fewer steps)" in table


# --------------------------------------------------------------------------- run directories


def _make_run(root, split_records):
    run = root / "results" / "krizhevsky" / "run-1"
    (run / "curves").mkdir(parents=True)
    (run / "meta.json").write_text(
        json.dumps(
            {
                "status": "done",
                "jax_version": "0.10.2",
                "devices": ["cpu:0"],
                "git_commit": "deadbeef",
                "config_hash": "c0ffee1234",
                "groups": ["relu-d4", "tanh-d4"],
            }
        )
    )
    (run / "config.json").write_text("{}")
    steps = np.arange(0, 101, 25)
    by_group = {}
    for act, hit in (("relu", 25), ("tanh", 75)):
        rs = [rec(act, lr, s, hit if lr == 0.1 else None) for lr in (0.1, 1.0) for s in range(3)]
        by_group[rs[0]["group"]] = rs
        err = np.where(steps[None, :] >= hit, 0.2, 0.9) + 0.01 * np.arange(6)[:, None]
        np.savez(
            run / "curves" / f"{rs[0]['group']}.npz",
            config_ids=np.array([r["config_id"] for r in rs]),
            eval_steps=steps,
            eval_error=err,
            minibatch_error=np.full((6, 100), 0.5),
            loss=np.ones((6, 100)),
        )
    if split_records:
        (run / "records").mkdir()
        for g, rs in by_group.items():
            (run / "records" / f"{g}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
    else:
        lines = [json.dumps(r) for rs in by_group.values() for r in rs]
        (run / "records.jsonl").write_text("\n".join(lines) + "\n")
    return run


@pytest.mark.parametrize("split_records", [False, True])
def test_load_run(tmp_path, split_records):
    run = _make_run(tmp_path, split_records)
    records, curves = sm.load_run(run)
    assert len(records) == 12 and len(curves) == 12
    c = curves["tanh-d4-lr0.1-s2-slNone"]
    np.testing.assert_array_equal(c["eval_steps"], [0, 25, 50, 75, 100])
    np.testing.assert_allclose(c["eval_error"], [0.92, 0.92, 0.92, 0.22, 0.22])
    assert c["loss"].shape == (100,) and c["minibatch_error"].shape == (100,)


def test_load_run_truncated_last_line_and_bad_middle_line(tmp_path):
    run = _make_run(tmp_path, split_records=False)
    text = (run / "records.jsonl").read_text()
    (run / "records.jsonl").write_text(text + '{"activation": "re')
    with pytest.warns(UserWarning, match="truncated last record"):
        records, _ = sm.load_run(run)
    assert len(records) == 12
    lines = text.splitlines()
    (run / "records.jsonl").write_text("\n".join([lines[0], "{oops", *lines[1:]]))
    with pytest.raises(ValueError, match=r"records.jsonl:2 is not JSON"):
        sm.load_run(run)
    with pytest.raises(ValueError, match=r"^run_dir: .* is not a directory"):
        sm.load_run(tmp_path / "absent")


def test_write_report(tmp_path):
    run = _make_run(tmp_path, split_records=True)
    summary = sm.write_report(run, n_boot=100)

    assert sorted(p.name for p in run.iterdir()) == [
        "config.json",
        "curves",
        "curves.png",
        "meta.json",
        "records",
        "summary.json",
        "summary.md",
    ]  # and no temporary files left behind
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((run / "summary.json").read_text()) == summary
    assert summary["run"]["git_commit"] == "deadbeef"
    assert summary["run"]["name"] == "krizhevsky/run-1"
    rp = only_setting(summary)["reference_pair"]
    assert rp["ratio"] == 3.0 and rp["ci"] == [3.0, 3.0]
    md = (run / "summary.md").read_text()
    assert "`deadbeef`" in md and "`c0ffee1234`" in md
    assert "| tanh | 0.1\\* | 75 [3/3] | 0.1 | 3.00 [3.00, 3.00] |" in md
    assert (
        "**tanh/relu = 3.00 [3.00, 3.00]**" in md and "![training error curves](curves.png)" in md
    )


def test_write_report_without_curves_or_config_hash(tmp_path):
    run = _make_run(tmp_path, split_records=False)
    for f in (run / "curves").iterdir():
        f.unlink()
    meta = json.loads((run / "meta.json").read_text())
    del meta["config_hash"]
    (run / "meta.json").write_text(json.dumps(meta))
    summary = sm.write_report(run, n_boot=10)
    assert summary["run"]["config_hash"].endswith("(sha256 of config.json)")
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert math.isclose(only_setting(summary)["reference_pair"]["ratio"], 3.0)
