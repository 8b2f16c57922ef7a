"""RunConfig: TOML round trip, --set overrides, type checks, and the run identity."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longrnn.errors import UsageError
from longrnn.runs.config import (
    SECTIONS,
    RunConfig,
    apply_overrides,
    field_type,
    from_dict,
    get_key,
    leaf_keys,
    load,
    parse_value,
    set_key,
    to_toml,
)


def test_toml_round_trip(tmp_path):
    config = RunConfig()
    apply_overrides(config, ["task.name=digits", "task.permuted=true", "task.pad=20", "model.cell=gru",
                             "model.gate_parity=false", "train.lr=0.003", "train.seed=7", "out=elsewhere"])
    path = tmp_path / "c.toml"
    path.write_text(to_toml(config))
    assert load(path) == config


@settings(max_examples=25, deadline=None)
@given(lr=st.floats(1e-6, 1.0), steps=st.integers(1, 10**6), clip=st.floats(0, 100), fused=st.booleans(),
       seq_len=st.one_of(st.none(), st.integers(1, 10**5)))
def test_toml_round_trip_property(tmp_path_factory, lr, steps, clip, fused, seq_len):
    config = RunConfig()
    config.train.lr, config.train.steps, config.train.clip = lr, steps, clip
    config.model.fused, config.task.seq_len = fused, seq_len
    path = tmp_path_factory.mktemp("c") / "c.toml"
    path.write_text(to_toml(config))
    assert load(path) == config


def test_set_routes_unknown_task_and_model_keys_to_options():
    config = apply_overrides(RunConfig(), ["task.rows=true", "model.options.nonlinearity=tanh"])
    assert config.task.options == {"rows": True}
    assert config.model.options == {"nonlinearity": "tanh"}


def test_get_key_reads_what_set_key_writes_options_included():
    config = apply_overrides(RunConfig(), ["model.chrono_input=false", "task.options.rows=true"])
    assert get_key(config, "model.chrono_input") is False and get_key(config, "model.options.chrono_input") is False
    assert get_key(config, "task.rows") is True and get_key(config, "model.cell") == "lstm"
    for key, message in [("model.colour", "'colour' is not one of"), ("optimizer.lr", "'optimizer' is not one of"),
                         ("model", "is a section")]:
        with pytest.raises(UsageError, match=message):
            get_key(config, key)


@pytest.mark.parametrize("item, message", [
    ("train.lrr=0.1", "unknown config key 'train.lrr'"),
    ("optimizer.lr=0.1", "unknown config key 'optimizer.lr'"),
    ("train.steps=many", "train.steps must be of type int, got 'many'"),
    ("train.stop_when_solved=3", "must be of type bool"),
    ("no-equals-sign", "key=value"),
])
def test_bad_overrides_name_the_bad_value(item, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_overrides(RunConfig(), [item])


def test_every_leaf_key_can_be_set_to_a_value_of_its_type():
    config = RunConfig()
    examples = {int: 5, float: 0.5, bool: False, str: "x"}
    for key in leaf_keys():
        section, _, name = key.partition(".")
        kind = field_type(SECTIONS[section], name) if name else str
        set_key(config, key, examples[kind])
        assert get_key(config, key) == examples[kind]


def test_ints_become_floats_for_float_fields():
    config = from_dict({"train": {"lr": 1, "clip": 0}})
    assert config.train.lr == 1.0 and isinstance(config.train.lr, float)


def test_parse_value_reads_toml_scalars():
    assert parse_value("true") is True
    assert parse_value("3") == 3
    assert parse_value("1e-3") == 1e-3
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("lstm") == "lstm"


def test_identity_ignores_seed_and_output_place_but_not_hyperparameters():
    a, b = RunConfig(), RunConfig()
    b.train.seed, b.out, b.name = 3, "x", "y"
    assert a.identity() == b.identity()
    b.train.lr = 0.5
    assert a.identity() != b.identity()
    assert a.run_name() != RunConfig(train=type(a.train)(seed=1)).run_name()


def test_identity_survives_settings_added_later(tmp_path):
    """A config file written before a setting existed (it lacks the key) keeps its identity, so its run resumes."""
    config = RunConfig()
    config.model.cell, config.train.lr = "gru", 0.01
    full = to_toml(config)
    older = "\n".join(line for line in full.splitlines() if not line.startswith("diagnostics"))
    assert "diagnostics" in full and "diagnostics" not in older
    path = tmp_path / "config.toml"
    path.write_text(older)
    assert load(path).identity() == config.identity()
    config.train.diagnostics = False
    assert load(path).identity() != config.identity()


def test_missing_and_invalid_config_files(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr = ")
    with pytest.raises(UsageError, match="not valid TOML"):
        load(bad)


def test_every_shipped_experiment_builds(tmp_path):
    from pathlib import Path

    from longrnn.training import build_model, build_task

    files = sorted((Path(__file__).parent.parent / "experiments").glob("*.toml"))
    assert files
    for path in files:
        if "[[variants]]" in path.read_text():
            continue  # a sweep, tested in test_sweep.py
        config = load(path)
        task = build_task(config)
        build_model(config, task)
