"""SIGKILL at any moment loses nothing and changes nothing: a sweep killed at random moments
(startup, compile, training, writing) and rerun each time ends with records and curves equal,
bit for bit, to those of a run that was never killed. And the write-order window itself:
a group with curves but no records, or records but no curves, is not finished and reruns."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from _bench_util import REPO, TINY, bench_env, write_toml

from bench import config, execute, results, sweep

SPEC = {
    **TINY,
    "experiment": "kill",
    "activation": ["relu", "tanh", "elu"],
    "lr": [0.3],
    "seed": [0, 1],
    "strategy": "vmap",
}
KILLS = 20


def _start(path, out, env):
    return subprocess.Popen(
        [sys.executable, "-m", "bench", "sweep", str(path), "--out", str(out), "--no-report"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _strip(recs):  # git_commit moves if a commit lands while the test runs
    return [{k: v for k, v in r.items() if k != "git_commit"} for r in recs]


def _assert_same_results(run_dir, ref_dir):
    assert _strip(results.read_records(run_dir)) == _strip(results.read_records(ref_dir))
    names = sorted(p.name for p in (ref_dir / "curves").glob("*.npz"))
    assert sorted(p.name for p in (run_dir / "curves").glob("*.npz")) == names
    for name in names:
        with np.load(run_dir / "curves" / name) as a, np.load(ref_dir / "curves" / name) as b:
            assert sorted(a.files) == sorted(b.files), name
            for k in b.files:
                x, y = a[k], b[k]
                assert (x.dtype, x.shape) == (y.dtype, y.shape), (name, k)
                assert x.tobytes() == y.tobytes(), (name, k)  # bit for bit, NaNs included


def test_sigkill_at_random_moments(tmp_path):
    env = bench_env(cache_dir=tmp_path / "jax-cache")
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # cache the small programs too
    path = write_toml(tmp_path / "kill.toml", SPEC)
    cfg = config.parse(SPEC)
    n_groups = len(sweep.groups(cfg))

    # The reference run, uninterrupted; it also fills the compilation cache, so that the
    # runs below spend their time where it varies (startup, compile from the cache, training,
    # writing) and the moments drawn below cover that span.
    ref_dir = sweep.run_dir_for(cfg, tmp_path / "ref")
    p = _start(path, tmp_path / "ref", env)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    # A second run, with a warm cache, timed: startup, then one group after another.
    p = _start(path, tmp_path / "ref2", env)
    t0, done_at = time.monotonic(), []
    while p.poll() is None:
        if len(results.finished_groups(sweep.run_dir_for(cfg, tmp_path / "ref2"))) > len(done_at):
            done_at.append(time.monotonic() - t0)
        time.sleep(0.02)
    assert p.returncode == 0, p.communicate()[1]
    end = time.monotonic() - t0
    done_at += [end] * (n_groups - len(done_at))
    per_group = (done_at[-1] - done_at[0]) / (n_groups - 1)
    startup, tail = done_at[0] - per_group, end - done_at[-1]

    rng = np.random.default_rng(0)
    out = tmp_path / "out"
    run_dir = sweep.run_dir_for(cfg, out)
    kills, episodes, kept = 0, 0, []  # groups on disk before and after each killed run
    scale = 1.25  # follows the machine's speed: shrinks when a run ends first, grows otherwise
    while True:
        # A moment within the run's expected length given the groups already on disk, and a
        # little beyond, so that some runs finish and an episode starts again from nothing.
        before = len(results.finished_groups(run_dir))
        left = n_groups - before
        moment = rng.uniform(0, scale * (startup + per_group * left + tail))
        p = _start(path, out, env)
        try:
            _, err = p.communicate(timeout=moment if kills < KILLS else 600)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            kills += 1
            kept.append((before, len(results.finished_groups(run_dir))))
            scale = min(1.5, scale * 1.1)
            continue
        assert p.returncode == 0, err
        assert json.loads((run_dir / "meta.json").read_text())["status"] == "done"
        _assert_same_results(run_dir, ref_dir)
        episodes += 1
        if kills >= KILLS:
            break
        scale *= 0.7
        shutil.rmtree(out)  # the next episode starts from nothing
    print(
        f"startup {startup:.1f} s, {per_group:.1f} s a group; {kills} kills in {episodes} "
        f"episodes; groups on disk before and after each killed run: {kept}"
    )
    # some kills came before the run finished a group (startup, compile, training), others
    # after it had written one
    progressed = [after > b for b, after in kept]
    assert any(progressed) and not all(progressed)


# The write-order window by hand (in this process).


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    spec = {**SPEC, "activation": ["relu", "tanh"]}
    cfg = config.parse(spec)
    out = tmp_path_factory.mktemp("finished")
    return cfg, sweep.run_sweep(cfg, out, progress=False, report=False)


def _rerun(cfg, finished_dir, tmp_path, monkeypatch, damage):
    out = tmp_path / "out"
    run_dir = sweep.run_dir_for(cfg, out)
    shutil.copytree(finished_dir, run_dir)
    damage(run_dir)
    ran = []
    real = execute.run_group

    def spy(static, configs, *a, **k):
        ran.append(static.activation)
        return real(static, configs, *a, **k)

    monkeypatch.setattr(execute, "run_group", spy)
    sweep.run_sweep(cfg, out, progress=False, report=False)
    _assert_same_results(run_dir, finished_dir)
    return ran


def test_curves_without_records_is_not_finished(finished, tmp_path, monkeypatch):
    """The window between the two writes of a group: its curves are on disk, its records not."""
    cfg, finished_dir = finished

    def drop_records(run_dir):
        recs = [r for r in results.read_records(run_dir) if "tanh" not in r["group"]]
        (run_dir / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))

    assert _rerun(cfg, finished_dir, tmp_path, monkeypatch, drop_records) == ["tanh"]


def test_records_without_curves_is_not_finished(finished, tmp_path, monkeypatch):
    cfg, finished_dir = finished

    def drop_curves(run_dir):
        results.curves_path(run_dir, "g001-tanh-mlp-d2w8").unlink()

    assert _rerun(cfg, finished_dir, tmp_path, monkeypatch, drop_curves) == ["tanh"]
