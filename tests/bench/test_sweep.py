"""Sweeps: the results layout, resume, and a run killed with SIGKILL losing only one group."""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest
from _bench_util import TINY, run_bench, write_toml

from bench import cli, config, execute, results, sweep

RECORD_KEYS = {
    "experiment",
    "group",
    "config_id",
    "dataset",
    "model",
    "activation",
    "depth",
    "width",
    "channels",
    "optimizer",
    "batch_size",
    "steps",
    "eval_every",
    "target",
    "init",
    "lr",
    "seed",
    "init_scale",
    "bias_init",
    "slope",
    "steps_to_target",
    "reached",
    "final_train_error",
    "final_minibatch_loss",
    "min_train_error",
    "diverged",
    "divergence_step",
    "status",
    "git_commit",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    cfg = config.parse({**TINY, "activation": ["relu", "tanh"], "strategy": "vmap"})
    run_dir = sweep.run_sweep(cfg, out, progress=False, report=False)
    return cfg, out, run_dir


def test_layout(run):
    cfg, out, run_dir = run
    assert run_dir == out / "tiny" / cfg.run_id()
    assert json.loads((run_dir / "config.json").read_text())["activation"] == ["relu", "tanh"]
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "done"
    assert meta["config_hash"] == cfg.config_hash()
    for k in ("jax_version", "devices", "platform", "git_commit", "git_dirty", "created"):
        assert k in meta
    assert set(meta["groups"]) == {"g000-relu-mlp-d2w8", "g001-tanh-mlp-d2w8"}
    for g in meta["groups"].values():
        assert {"compile_s", "run_s", "n_configs", "strategy"} <= set(g)
        assert g["n_configs"] == 6 and g["strategy"] == "vmap"

    recs = results.read_records(run_dir)
    assert len(recs) == 12 and len({r["config_id"] for r in recs}) == 12
    for r in recs:
        assert set(r) >= RECORD_KEYS, RECORD_KEYS - set(r)
        assert r["status"] == "done" and r["diverged"] is False and r["divergence_step"] is None
        assert r["reached"] == (r["steps_to_target"] is not None)
        assert r["width"] == 8 and r["channels"] is None and r["slope"] is None

    for gid in meta["groups"]:
        with np.load(results.curves_path(run_dir, gid)) as z:
            ids = [r["config_id"] for r in recs if r["group"] == gid]
            assert list(z["config_ids"]) == ids
            assert list(z["eval_steps"]) == [0, 5, 10, 15, 20]
            assert z["eval_error"].shape == (6, 5)
            assert z["loss"].shape == z["minibatch_error"].shape == (6, 20)
            # steps_to_target is the first evaluation at or below the target
            for r, ev in zip(
                recs[:6] if gid.startswith("g000") else recs[6:], z["eval_error"], strict=True
            ):
                hit = np.flatnonzero(ev <= cfg.target)
                assert r["steps_to_target"] == (int(z["eval_steps"][hit[0]]) if hit.size else None)


def test_rerun_resumes_without_recomputing(run, monkeypatch):
    cfg, out, run_dir = run
    before = (run_dir / "records.jsonl").read_text()

    def fail(*a, **k):
        raise AssertionError("a finished group was recomputed")

    monkeypatch.setattr(execute, "run_group", fail)
    assert sweep.run_sweep(cfg, out, progress=False, report=False) == run_dir
    assert (run_dir / "records.jsonl").read_text() == before


def test_resume_keeps_the_commit_that_produced_the_run(run, monkeypatch):
    # Bug it guards: a resume rewrote meta.json's git_commit to the resuming commit, so a
    # finished run claimed to come from code that never ran it.
    cfg, out, run_dir = run
    before = (run_dir / "meta.json").read_text()
    monkeypatch.setattr(results, "git_info", lambda: ("f" * 40, False))
    sweep.run_sweep(cfg, out, progress=False, report=False)
    assert (run_dir / "meta.json").read_text() == before


def test_partial_resume_names_each_commit(tmp_path, monkeypatch):
    cfg = config.parse({**TINY, "activation": ["relu", "tanh"], "strategy": "vmap"})
    monkeypatch.setattr(results, "git_info", lambda: ("a" * 40, False))
    run_dir = sweep.run_sweep(
        cfg,
        tmp_path,
        progress=False,
        report=False,
        group_filter=lambda g: g.static.activation == "relu",
    )
    monkeypatch.setattr(results, "git_info", lambda: ("b" * 40, True))
    sweep.run_sweep(cfg, tmp_path, progress=False, report=False)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["git_commit"] == "a" * 40 and meta["status"] == "done"
    assert [r["git_commit"] for r in meta["resumed"]] == ["b" * 40]
    assert {g: m["git_commit"] for g, m in meta["groups"].items()} == {
        "g000-relu-mlp-d2w8": "a" * 40,
        "g001-tanh-mlp-d2w8": "b" * 40,
    }
    commits = {r["activation"]: r["git_commit"] for r in results.read_records(run_dir)}
    assert commits == {"relu": "a" * 40, "tanh": "b" * 40}


def test_report_reads_the_run(run, capsys):
    _, _, run_dir = run
    assert cli.main(["report", str(run_dir)]) == 0
    assert "tanh" in capsys.readouterr().out
    assert (run_dir / "summary.json").exists()


def test_records_append_is_atomic_and_deduplicated(tmp_path):
    results.append_records(tmp_path, [{"config_id": "c0", "group": "g0", "x": 1}])
    results.append_records(
        tmp_path,
        [{"config_id": "c0", "group": "g0", "x": 2}, {"config_id": "c1", "group": "g1", "x": 3}],
    )
    recs = results.read_records(tmp_path)
    assert [(r["config_id"], r["x"]) for r in recs] == [("c0", 2), ("c1", 3)]
    # a group is finished only with its curves too
    assert results.finished_groups(tmp_path) == set()
    results.write_curves(tmp_path, "g1", {"a": np.zeros(2)})
    assert results.finished_groups(tmp_path) == {"g1"}
    assert not list(tmp_path.glob("**/*.tmp"))


def test_kill_and_resume(tmp_path):
    spec = {
        **TINY,
        "experiment": "kill",
        "activation": ["relu", "tanh", "elu"],
        "steps": 40,
        "strategy": "sequential",
    }
    path = write_toml(tmp_path / "kill.toml", spec)
    out = tmp_path / "out"
    cfg = config.parse(spec)
    run_dir = sweep.run_dir_for(cfg, out)
    args = ["sweep", str(path), "--out", str(out), "--no-report", "--quiet"]

    p = run_bench(args, cache_dir=tmp_path / "jax-cache")
    deadline = time.time() + 240
    while not (run_dir / "records.jsonl").exists():
        assert p.poll() is None, p.stdout.read()
        assert time.time() < deadline
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    finished = results.finished_groups(run_dir)
    assert finished and len(finished) < 3, "the kill came too late to test resuming"
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "incomplete"
    mtimes = {g: results.curves_path(run_dir, g).stat().st_mtime_ns for g in finished}
    meta_before = json.loads((run_dir / "meta.json").read_text())["groups"]

    p = run_bench(args, cache_dir=tmp_path / "jax-cache")
    log, _ = p.communicate(timeout=300)
    assert p.returncode == 0, log
    assert f"{len(finished)} groups already done" in log
    recs = results.read_records(run_dir)
    ids = [r["config_id"] for r in recs]
    assert len(ids) == len(set(ids)) == 3 * 6
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "done"
    for g in finished:  # not recomputed
        assert results.curves_path(run_dir, g).stat().st_mtime_ns == mtimes[g]
        assert meta["groups"][g] == meta_before[g]
