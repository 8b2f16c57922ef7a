"""Length generalisation at the end of training (`train.test_lengths`) and its part of a results page."""

import json

import pytest

from longrnn.cli import main

SWEEP = """
name = "ladder"
results = "{root}/page.md"
out = "{root}/runs"
seeds = [0, 1]

[base.train]
steps = 20
eval_every = 10
batch_size = 8
threads = 1
test_lengths = "8,40"
test_lengths_size = 10

[base.model]
hidden_size = 8

[[tasks]]
label = "copy_first T=8"
task = {{ name = "copy_first", seq_len = 8 }}

[[variants]]
label = "GRU"
model = {{ cell = "gru" }}

[[variants]]
label = "rPLRNN"
model = {{ cell = "plrnn", options = {{ init = "identity", integrators = 0.5 }} }}
"""


def test_a_run_is_tested_at_each_length_on_sets_of_the_given_size(tmp_path, capsys):
    assert main(["train", "--task", "copy", "--seq-len", "6", "--set", "task.options.recall=2", "--hidden-size", "8",
                 "--steps", "4", "--eval-every", "2", "--batch-size", "4", "--test-lengths", "6,30",
                 "--test-lengths-size", "7", "--threads", "1", "--quiet", "--json", "--out", str(tmp_path),
                 "--name", "r"]) == 0
    summary = json.loads(capsys.readouterr().out)
    tested = summary["test_lengths"]
    assert set(tested) == {"6", "30"}
    for result in tested.values():
        assert set(result) == {"test", "baseline", "seconds"} and 0 <= result["test"]["accuracy"] <= 1
    assert tested["6"]["test"] != summary["test"]  # a set of 7 sequences, not the run's test set of 2000
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["test_lengths"] == tested


@pytest.mark.parametrize(("value", "word"), [("10,x", "'x'"), ("0", "'0'"), ("-5", "'-5'")])
def test_bad_test_lengths_are_refused_before_training(tmp_path, capsys, value, word):
    assert main(["train", "--task", "copy_first", "--seq-len", "5", "--test-lengths", value, "--out",
                 str(tmp_path)]) == 2
    assert word in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_task_without_a_length_cannot_be_tested_at_other_lengths(tmp_path, capsys):
    assert main(["train", "--task", "digits", "--test-lengths", "100", "--out", str(tmp_path)]) == 2
    assert "test_lengths" in capsys.readouterr().err


def test_the_results_page_tables_and_draws_every_seed_at_every_length(tmp_path):
    path = tmp_path / "ladder.toml"
    path.write_text(SWEEP.format(root=tmp_path))
    assert main(["reproduce", str(path), "--quiet"]) == 0
    text = (tmp_path / "page.md").read_text()
    assert "Length generalisation, copy_first T=8: test mse of the kept weights on 10 sequences" in text
    assert "| variant | T=8 | T=40 |" in text and "| memoryless baseline | " in text
    ladder = text.split("Length generalisation")[1].split("\n\n")[1].splitlines()
    gru = next(line for line in ladder if line.startswith("| GRU | ")).split(" | ")[1:]
    assert len(gru) == 2 and all(cell.count(",") == 1 for cell in gru)  # each length: both seeds
    assert (tmp_path / "page_length.png").read_bytes()[:4] == b"\x89PNG"


def test_a_run_trained_on_variable_delays_is_tested_at_fixed_ones(tmp_path, capsys):
    base = ["train", "--task", "copy", "--seq-len", "6", "--set", "task.options.recall=2", "--set",
            "task.options.variable_delay=true", "--hidden-size", "8", "--steps", "2", "--eval-every", "2",
            "--batch-size", "4", "--test-lengths", "30", "--test-lengths-size", "20", "--threads", "1", "--quiet",
            "--json", "--out", str(tmp_path)]
    assert main([*base, "--name", "variable"]) == 0
    variable = json.loads(capsys.readouterr().out)["test_lengths"]["30"]["test"]
    assert main([*base, "--test-lengths-options", "variable_delay=false", "--name", "fixed"]) == 0
    fixed = json.loads(capsys.readouterr().out)["test_lengths"]["30"]["test"]
    assert fixed != variable  # other sequences: every delay is 30
    for bad, word in (("variable_delay=maybe", "variable_delay"), ("colour=red", "colour"), ("novalue", "KEY=VALUE")):
        assert main([*base, "--test-lengths-options", bad, "--name", "bad"]) == 2
        assert word in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
