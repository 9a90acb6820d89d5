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


# Run ids that the harness gave these configs before ``preprocess`` and per-layer ``init_std``
# existed (computed with the code of commit 6edde70); run directories are named by them.
OLD_IDS = [
    ("tiny-154e9e2029", {}),
    ("tiny-4594651465", {"init": "gaussian", "init_std": 0.02}),
    (
        "tiny-42e279ee88",
        {
            "dataset": "fashion-mnist",
            "data": {"limit_train": 500},
            "model": "cnn",
            "channels": [8, 8],
        },
    ),
]


@pytest.mark.parametrize(("run_id", "override"), OLD_IDS)
def test_run_ids_of_older_configs_are_unchanged(run_id, override):
    assert config.parse({**TINY, **override}).run_id() == run_id


def test_preprocess_enters_the_run_id_only_off_its_default():
    fm = {**TINY, "dataset": "fashion-mnist", "model": "cnn", "channels": [8, 8]}
    base = config.parse({**fm, "data": {"limit_train": 500}})
    same = config.parse({**fm, "data": {"limit_train": 500, "preprocess": "standardise"}})
    other = config.parse({**fm, "data": {"limit_train": 500, "preprocess": "mean_subtract"}})
    assert same.run_id() == base.run_id() == OLD_IDS[2][0]
    assert other.run_id() != base.run_id()
    # The stored config keeps what the file said.
    assert same.resolved()["data"] == {"limit_train": 500, "preprocess": "standardise"}
    # Other data options still count.
    assert config.parse({**fm, "data": {"limit_train": 400}}).run_id() != base.run_id()


def test_per_layer_init_std():
    cnn = {**TINY, "model": "cnn", "channels": [32, 32, 64], "init": "gaussian"}
    cfg = config.parse({**cnn, "init_std": [1e-4, 1e-2, 1e-2, 1e-2]})
    ((static, _),) = config.expand(cfg)
    assert static.init_std == (1e-4, 1e-2, 1e-2, 1e-2)  # a tuple: GroupStatic stays hashable
    hash(static)
    assert cfg.resolved()["init_std"] == [1e-4, 1e-2, 1e-2, 1e-2]
    assert cfg.run_id() != config.parse({**cnn, "init_std": 1e-2}).run_id()
    # An MLP of depth d has d + 1 weight layers; an int is a number.
    mlp = config.parse({**TINY, "init": "gaussian", "depth": 3, "init_std": [1, 0.1, 0.2, 0.3]})
    assert mlp.init_std == (1.0, 0.1, 0.2, 0.3)
    # Equal values are the scalar (same weights, same run id).
    assert config.parse({**cnn, "init_std": [1e-2] * 4}).init_std == 1e-2


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        (
            {"init_std": [0.1, 0.1]},
            ["2 stds for the 3 weight layers of the mlp of depth 2", "give 3"],
        ),
        (
            {"model": "cnn", "channels": [32, 32, 64], "init_std": [1e-4, 1e-2, 1e-2]},
            ["3 stds for the 4 weight layers of the cnn with channels [32, 32, 64]", "give 4"],
        ),
        ({"init_std": []}, ["empty list", "give 3 stds"]),
        ({"init_std": [0.1, -0.1, 0.1]}, ["must be > 0, got -0.1"]),
        ({"init_std": [0.1, "x", 0.1]}, ["expected a number"]),
        ({"init_std": [0.1, float("inf"), 0.1]}, ["must be finite"]),
        ({"init": "he_normal", "init_std": [0.1] * 3}, ['for init = "gaussian" only', "he_normal"]),
        ({"init": ["gaussian", "orthogonal"], "init_std": [0.1] * 3}, ["'orthogonal'"]),
        ({"depth": [2, 3], "init_std": [0.1] * 3}, ["depth 2 has 3 weight layers", "depth 3 4"]),
    ],
)
def test_bad_init_std_messages(override, fragments):
    with pytest.raises(ValueError, match=r"^init_std: ") as e:
        config.parse({**TINY, "init": "gaussian", **override})
    assert "\n" not in str(e.value)
    for f in fragments:
        assert f in str(e.value), str(e.value)


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
    ("init_std", {"init": "gaussian", "init_std": [0.1, 0.1]}),  # depth 2: 3 weight layers
    ("init_std", {"init": "gaussian", "init_std": [0.1, -0.1, 0.1]}),
    ("init_std", {"init_std": [0.1, 0.1, 0.1]}),  # a list with init lecun_normal
    ("init_std", {"init": "gaussian", "model": "cnn", "channels": [4, 4], "init_std": [1.0] * 4}),
    ("preprocess", {"dataset": "fashion-mnist", "data": {"preprocess": "zca"}}),
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
