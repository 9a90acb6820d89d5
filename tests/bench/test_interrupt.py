"""Ctrl-C and SIGTERM: a sweep stops within 2 s at any moment, keeps its finished groups,
marks the run interrupted, says how to resume in one line, and the resumed run ends with the
records of a run that was never interrupted."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from _bench_util import REPO, TINY, bench_env, write_toml

from bench import config, interrupt, results, sweep

# Two groups: a short one, then one that trains for several seconds (width 256, 6000 steps:
# ~3 s on an idle 2-core machine, ~10 s on a loaded one), long enough that an exit within 2 s
# of a signal sent ~1 s into it can only come from the interruption.
SPEC = {
    **TINY,
    "experiment": "interrupt",
    "width": 256,
    "steps": [40, 6000],
    "eval_every": 20,
    "lr": [0.1],
    "seed": [0, 1],
    "strategy": "vmap",
}
EXIT_S = 2.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt")
    env = bench_env(cache_dir=root / "jax-cache")
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # cache the small programs too
    path = write_toml(root / "interrupt.toml", SPEC)
    cfg = config.parse(SPEC)
    ref_out = root / "ref"
    p = _start(path, ref_out, env)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    return root, path, env, cfg, sweep.run_dir_for(cfg, ref_out)


def _args(path, out):
    return ["sweep", str(path), "--out", str(out), "--no-report"]


def _start(path, out, env):
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *_args(path, out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _signal_and_wait(p, signum):
    """Send the signal; (seconds until the process exited, stderr)."""
    t = time.monotonic()
    p.send_signal(signum)
    try:
        p.wait(timeout=60)
    finally:
        p.kill()
    elapsed = time.monotonic() - t
    return elapsed, p.stderr.read()


def _check_interrupted(p, elapsed, err, signum, run_dir, command, t_start):
    name = signal.Signals(signum).name
    assert p.returncode == 128 + signum, err
    assert elapsed < EXIT_S, f"exited {elapsed:.2f} s after {name}"
    lines = [x for x in err.splitlines() if x.startswith("interrupted")]
    assert lines == [
        f"interrupted by {name}: 1 of 2 groups kept in {run_dir}; resume with: {command}"
    ], err
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "interrupted"
    when = datetime.datetime.fromisoformat(meta["interrupted"]).timestamp()
    assert t_start - 1 <= when <= time.time() + 1
    assert results.finished_groups(run_dir) == {"g000-tanh-mlp-d2w256"}
    assert not list(run_dir.glob("**/*.tmp")), "a temporary file was left"


def test_sigint_and_sigterm_stop_at_once_and_resume(setup):
    root, path, env, cfg, ref_dir = setup
    out = root / "out"
    run_dir = sweep.run_dir_for(cfg, out)
    command = "python -m bench " + " ".join(_args(path, out))

    # SIGINT while the long group trains: the first group is on disk, the second is not.
    t_start = time.time()
    p = _start(path, out, env)
    deadline = time.monotonic() + 300
    while not (run_dir / "records.jsonl").exists():
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(1.0)
    assert p.poll() is None
    elapsed, err = _signal_and_wait(p, signal.SIGINT)
    _check_interrupted(p, elapsed, err, signal.SIGINT, run_dir, command, t_start)

    # SIGTERM in the resumed run, once it has started the long group (compiling or training).
    p = _start(path, out, env)
    header = p.stderr.readline()
    assert "1 groups already done" in header, header + p.communicate()[1]
    time.sleep(1.0)
    assert p.poll() is None
    elapsed, err = _signal_and_wait(p, signal.SIGTERM)
    _check_interrupted(p, elapsed, err, signal.SIGTERM, run_dir, command, t_start)

    p = _start(path, out, env)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    assert "1 groups already done" in err
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "done"

    def strip(recs):  # git_commit moves if a commit lands while the test runs
        return [{k: v for k, v in r.items() if k != "git_commit"} for r in recs]

    assert strip(results.read_records(run_dir)) == strip(results.read_records(ref_dir))


def test_a_second_signal_exits_at_once(tmp_path):
    """Inside a section that holds signals back, the second SIGINT still exits."""
    code = (
        "import time; from bench import interrupt; interrupt.install()\n"
        "with interrupt.deferred():\n"
        "    print('ready', flush=True); time.sleep(60)\n"
    )
    _, elapsed = _signal_twice(code, tmp_path, signal.SIGINT, signal.SIGINT, expect=130)
    assert elapsed < interrupt.GRACE_S  # the second signal, not the watchdog's deadline


def test_watchdog_exits_while_the_main_thread_is_held_in_c(tmp_path):
    """A main thread inside a long C call never runs the Python handler: the watchdog exits."""
    code = (
        "import numpy as np; from bench import interrupt; interrupt.install()\n"
        "a = np.ones((6000, 6000), np.float32)\n"
        "print('ready', flush=True)\n"
        "a @ a  # one BLAS call of 0.4 TFLOP on one thread: seconds in C, the GIL released\n"
    )
    err, elapsed = _signal_twice(code, tmp_path, signal.SIGTERM, None, expect=143)
    assert elapsed < EXIT_S
    assert err.strip().splitlines()[-1].startswith("interrupted by SIGTERM"), err


def _signal_twice(code, tmp_path, first, second, expect):
    p = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**bench_env(), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout.readline().strip() == "ready", p.communicate()
        time.sleep(0.3)
        t = time.monotonic()
        p.send_signal(first)
        if second is not None:
            time.sleep(0.2)
            p.send_signal(second)
        p.wait(timeout=60)
        elapsed = time.monotonic() - t
    finally:
        p.kill()
    assert p.returncode == expect, p.stderr.read()
    return p.stderr.read(), elapsed


# In this process: the pieces, with the module's state reset around each test.


@pytest.fixture
def state(monkeypatch):
    monkeypatch.setattr(interrupt, "_state", interrupt._State())


def test_deferred_holds_the_signal_until_the_block_ends(state):
    done = []
    with pytest.raises(interrupt.Interrupted) as e:
        with interrupt.deferred():
            interrupt._handler(signal.SIGTERM, None)  # what the signal would run
            done.append("the block finished")
    assert done == ["the block finished"]
    assert e.value.code == 143 and e.value.signal_name == "SIGTERM"


def test_a_signal_outside_deferred_raises_at_once(state):
    with pytest.raises(interrupt.Interrupted) as e:
        interrupt._handler(signal.SIGINT, None)
    assert e.value.code == 130


def test_call_runs_on_a_worker_and_hands_back_result_and_errors(state):
    main = threading.get_ident()
    polls = []

    def work(x):
        time.sleep(3 * interrupt.POLL_S)
        return x, threading.get_ident()

    value, ident = interrupt.call(work, 7, poll=lambda: polls.append(1))
    assert value == 7 and ident != main and polls

    def fail():
        raise ValueError("from the worker")

    with pytest.raises(ValueError, match="from the worker"):
        interrupt.call(fail)


def test_command_line_is_the_one_typed():
    main = os.path.join("somewhere", "bench", "__main__.py")
    argv = [main, "sweep", "a b.toml", "--set", "lr=[0.1]"]
    assert interrupt.command_line(argv) == "python -m bench sweep 'a b.toml' --set 'lr=[0.1]'"
