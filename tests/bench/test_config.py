"""Config parsing: grids, groups, run ids, and bad configs rejected before anything compiles."""

from __future__ import annotations

import jax
import pytest
from _bench_util import TINY, write_toml

from bench import cli, config


def test_defaults_parse_and_expand():
    cfg = config.parse({})
    groups = config.expand(cfg)
    assert len(groups) == 1
    static, configs = groups[0]
    assert static.model == "mlp" and static.depth == 4 and static.width == 64
    assert static.channels is None
    assert configs == [{"lr": 0.1, "seed": 0, "init_scale": 1.0, "bias_init": 0.0, "slope": None}]


def test_static_axes_make_groups_dynamic_axes_make_lanes():
    cfg = config.parse(
        {**TINY, "activation": ["relu", "tanh"], "depth": [1, 3], "init_scale": [1.0, 2.0]}
    )
    groups = config.expand(cfg)
    assert len(groups) == 4  # activation x depth
    assert all(len(c) == 2 * 3 * 2 for _, c in groups)  # lr x seed x init_scale


def test_unused_axes_collapse():
    # A CNN ignores depth/width; channels as a list of lists is an axis.
    cfg = config.parse(
        {"model": "cnn", "depth": [2, 4], "width": [8, 16], "channels": [[4, 4, 8], [8, 8, 8]]}
    )
    groups = config.expand(cfg)
    assert [g.channels for g, _ in groups] == [(4, 4, 8), (8, 8, 8)]
    assert all(g.depth == 3 and g.width is None for g, _ in groups)
    # slope collapses for activations without a hyperparameter, defaults where unset.
    cfg = config.parse({"activation": ["relu", "leaky_relu"], "slope": [0.1, 0.2]})
    (_, c1), (_, c2) = config.expand(cfg)
    assert [c["slope"] for c in c1] == [None]
    assert [c["slope"] for c in c2] == [0.1, 0.2]
    ((_, c3),) = config.expand(config.parse({"activation": "prelu"}))
    assert [c["slope"] for c in c3] == [0.25]


def test_run_id_deterministic_and_ignores_execution_settings():
    a = config.parse(TINY)
    assert a.run_id() == config.parse(dict(TINY)).run_id()
    assert a.run_id() == config.parse({**TINY, "strategy": "sequential"}).run_id()
    assert a.run_id() != config.parse({**TINY, "steps": 40}).run_id()
    assert a.run_id().startswith("tiny-")


def test_overrides_are_toml(tmp_path):
    path = write_toml(tmp_path / "s.toml", TINY)
    cfg = config.load(str(path), ["steps=40", "lr=[0.1, 0.01]", "activation=relu", "target=0.2"])
    assert cfg.axes["steps"] == (40,)
    assert cfg.axes["lr"] == (0.1, 0.01)
    assert cfg.axes["activation"] == ("relu",)
    assert cfg.target == 0.2


BAD = [
    ("activation", {"activation": "swishy"}),
    ("activation", {"activation": ["relu", "nope"]}),
    ("depth", {"depth": 0}),
    ("depth", {"depth": 201}),
    ("depth", {"depth": 2.5}),
    ("width", {"width": 0}),
    ("lr", {"lr": -0.1}),
    ("lr", {"lr": []}),
    ("lr", {"lr": "fast"}),
    ("nonsense", {"nonsense": 1}),
    ("batch_size", {"batch_size": True}),
    ("batch_size", {"batch_size": 0}),
    ("steps", {"steps": 0}),
    ("target", {"target": 1.5}),
    ("target", {"target": 0.0}),
    ("optimizer", {"optimizer": "lbfgs"}),
    ("init", {"init": "magic"}),
    ("eval_every", {"eval_every": 50}),  # > steps (20)
    ("eval_every", {"eval_every": 3}),  # does not divide steps
    ("strategy", {"strategy": "pmap"}),
    ("dataset", {"dataset": "imagenet"}),
    ("data_dir", {"dataset": "cifar10", "data": {}, "data_dir": "/nonexistent/cifar"}),
    ("model", {"model": "transformer"}),
    ("channels", {"model": "cnn", "channels": [8, 0]}),
    ("seed", {"seed": -1}),
    ("init_scale", {"init_scale": 0}),
    ("momentum", {"momentum": 1.0}),
    ("pool", {"pool": 4}),
    ("prelu_mode", {"prelu_mode": "neuron"}),
    ("eval_size", {"eval_size": 0}),
    ("experiment", {"experiment": "a/b"}),
]


@pytest.fixture
def no_compile(monkeypatch):
    """Fail if anything is jitted or compiled during the test."""
    compiled = []

    def listener(event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)

    def forbidden(*a, **k):
        raise AssertionError("jax.jit called while validating a config")

    monkeypatch.setattr(jax, "jit", forbidden)
    yield compiled
    jax.monitoring.unregister_event_duration_listener(listener)
    assert not compiled


@pytest.mark.parametrize(("key", "override"), BAD, ids=[f"{k}-{i}" for i, (k, _) in enumerate(BAD)])
def test_bad_config_names_key_before_compiling(key, override, tmp_path, capsys, no_compile):
    path = write_toml(tmp_path / "bad.toml", {**TINY, **override})
    # Through the CLI: exit status 2 and a one-line error naming the key.
    assert cli.main(["sweep", str(path), "--out", str(tmp_path / "out"), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {key}"), err
    assert not (tmp_path / "out").exists()
    # And through the library.
    with pytest.raises(ValueError, match=f"^{key}"):
        config.validate_data(config.parse({**TINY, **override}))


def test_bad_override_type(tmp_path, capsys, no_compile):
    path = write_toml(tmp_path / "s.toml", TINY)
    assert cli.main(["sweep", str(path), "--set", "depth=[1, true]"]) == 2
    assert capsys.readouterr().err.startswith("error: depth")
