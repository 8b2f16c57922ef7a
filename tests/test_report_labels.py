"""Report labels tell configurations apart by what differs between them (reporting/labels.py): never the
same label for two configurations, a setting most of a panel shares said once, values written so that
different values read differently."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from longrnn.reporting import labels
from longrnn.runs.config import RunConfig, apply_overrides


def config(*overrides: str) -> RunConfig:
    return apply_overrides(RunConfig(), ["task.name=copy", "model.cell=lstm", *overrides])


def test_an_adam_and_an_sgd_run_are_named_by_their_optimizer():
    adam, sgd = config(), config("train.optimizer=sgd")
    assert labels.label(adam) == labels.label(sgd)  # the old report named both "lstm h128x1 (bptt, lr 0.003)"
    assert labels.distinct([adam, sgd], labels.label) == [f"{labels.label(adam)}, optimizer={name}"
                                                         for name in ("adam", "sgd")]
    entries, common = labels.legend([adam, sgd], labels.label)
    assert entries == ["optimizer=adam", "optimizer=sgd"] and common.startswith("lstm, h128x1, bptt, lr 0.003")


def test_a_setting_most_configurations_share_is_said_once():
    reference = config()
    departures = [config("train.optimizer=sgd"), config("train.lr=0.01"), config("train.clip=0"),
                  config("model.hidden_size=16")]
    entries, common = labels.legend([reference, *departures], labels.label)
    assert entries == [labels.NOTHING_NAMED, "optimizer=sgd", "lr=0.01", "clip=0.0", "hidden_size=16"]
    assert "unless named: hidden_size=128, lr=0.003, optimizer=adam, clip=1.0" in common


def test_values_that_differ_read_differently():
    assert labels.value_text(0.00123456701) != labels.value_text(0.00123456749)
    assert (labels.value_text(1), labels.value_text(1.0), labels.value_text(1e20)) == ("1", "1.0", "1e+20")
    assert labels.value_text(0.003) == "0.003" and labels.value_text(None) == "default"
    a, b = config("train.lr=0.00123456701"), config("train.lr=0.00123456749")
    assert len(set(labels.distinct([a, b], labels.label))) == 2


SETTINGS = {"train.optimizer": ["adam", "sgd"], "train.lr": [0.003, 0.0030000001, 0.01],
            "train.clip": [0.0, 1.0], "model.hidden_size": [8, 16], "task.width": [None, 1, 1.0]}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[st.sampled_from(range(len(v))) for v in SETTINGS.values()]), min_size=1, max_size=8,
                unique=True))
def test_different_configurations_never_share_a_label(choices):
    configs = []
    for choice in choices:
        values = {k: SETTINGS[k][i] for k, i in zip(SETTINGS, choice)}
        configs.append(config(*(f"{k}={v}" for k, v in values.items() if v is not None)))
    assert len({c.identity() for c in configs}) == len(configs)
    for made in (labels.distinct(configs, labels.label), labels.legend(configs, labels.label)[0]):
        assert len(set(made)) == len(configs), made
