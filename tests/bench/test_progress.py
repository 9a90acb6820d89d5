"""Progress: counted per evaluation chunk from the device, shown as a bar that moves inside a
group on a terminal, and as one plain line per group (no carriage returns) elsewhere."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from _bench_util import TINY

from bench import config, execute, sweep


class Counter:
    def __init__(self):
        self.n, self.calls, self._lock = 0, 0, threading.Lock()

    def __call__(self, k: int) -> None:  # called from XLA's host callback threads
        with self._lock:
            self.n += k
            self.calls += 1


@pytest.fixture(scope="module")
def group():
    # 5 configurations: chunks of 2 lanes leave a remainder of 1
    cfg = config.parse({**TINY, "lr": [0.3], "seed": [0, 1, 2, 3, 4]})
    ((static, configs),) = config.expand(cfg)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = np.argmax(x[:, :4], 1).astype(np.int32)
    return static, configs, execute.train_data(x, y, cfg.eval_size)


@pytest.fixture(scope="module")
def counted(group):
    static, configs, data = group
    out = {}
    for strategy in ("vmap", "chunked", "sequential"):
        count = Counter()
        metrics, _ = execute.run_group(
            static, configs, data, 4, strategy=strategy, max_lanes=2, progress=count
        )
        out[strategy] = count, metrics
    return out


@pytest.mark.parametrize("strategy", ["vmap", "chunked", "sequential"])
def test_counter_reaches_lanes_times_chunks(group, counted, strategy):
    static, configs, _ = group
    count, _ = counted[strategy]
    assert count.n == len(configs) * (static.steps // static.eval_every) == 5 * 4
    # one call per vmapped block and chunk, not one per lane (1 device here)
    blocks = {"vmap": 1, "chunked": 3, "sequential": 5}[strategy]
    assert count.calls == blocks * 4


def test_progress_leaves_the_results_unchanged(group, counted):
    static, configs, data = group
    plain, _ = execute.run_group(static, configs, data, 4, strategy="vmap")
    _, with_progress = counted["vmap"]
    for k in plain:
        assert plain[k].tobytes() == with_progress[k].tobytes(), k


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_the_bar_moves_inside_a_group():
    cfg = config.parse({**TINY, "activation": ["relu", "tanh"]})
    gs = sweep.groups(cfg)
    log = FakeTerminal()
    shown = sweep._Progress(gs, gs[1:], log, show=True)  # the first group already done
    per_group = 6 * 20  # configurations x steps
    assert shown.bar.n == per_group and shown.bar.total == 2 * per_group
    shown.start(gs[1])
    worker = threading.Thread(target=shown.tick, args=(3,))  # as XLA's callback thread would
    worker.start()
    worker.join()
    shown.poll()
    assert shown.bar.n == per_group + 3 * 5  # 3 configurations finished a 5-step chunk
    shown.finish(gs[1], {"strategy": "vmap", "compile_s": 1.0, "run_s": 2.0})
    assert shown.bar.n == 2 * per_group
    shown.close()
    assert "\r" in log.getvalue()


def test_plain_lines_when_not_a_terminal(tmp_path):
    cfg = config.parse({**TINY, "activation": ["relu", "tanh"]})
    log = io.StringIO()  # isatty() is False, like a file or a pipe
    sweep.run_sweep(cfg, tmp_path, progress=True, log=log, report=False)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0].startswith("run ")
    assert [x.split(":")[0] for x in lines[1:]] == [g.id for g in sweep.groups(cfg)]
    assert "ETA" in lines[-1]


@pytest.mark.parametrize("log", [io.StringIO(), FakeTerminal()])
def test_quiet_shows_nothing(log):
    gs = sweep.groups(config.parse(TINY))
    shown = sweep._Progress(gs, gs, log, show=False)
    shown.start(gs[0])
    shown.tick(6)
    shown.poll()
    shown.finish(gs[0], {"strategy": "vmap", "compile_s": 1.0, "run_s": 2.0})
    shown.close()
    assert log.getvalue() == ""
