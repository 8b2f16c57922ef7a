"""Sweeps from TOML, `longrnn reproduce`, and results pages that keep their hand-written text."""

import json
from pathlib import Path

import pytest

from longrnn.cli import main
from longrnn.errors import UsageError
from longrnn.results import BEGIN, END, steps_to_solve
from longrnn.sweep import load_sweep, merge, run_sweep

SWEEP = """
name = "tiny"
description = "A tiny grid for the tests."
results = "{root}/page.md"
out = "{root}/runs"
seeds = [0, 1]

[base.train]
steps = 30
eval_every = 10
batch_size = 8
threads = 1

[base.model]
hidden_size = 8

[[tasks]]
label = "adding T=8"
task = {{ name = "adding", seq_len = 8 }}

[[tasks]]
label = "copy T=4"
task = {{ name = "copy", seq_len = 4 }}
train = {{ steps = 20 }}

[[variants]]
label = "LSTM, sigmoid"
model = {{ cell = "lstm" }}

[[variants]]
label = "LSTM, fast gate"
model = {{ cell = "lstm", gate = "fast", forget_init = "chrono:{{seq_len}}" }}
"""


@pytest.fixture
def sweep_file(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(SWEEP.format(root=tmp_path))
    return path


def test_the_grid_is_base_task_variant_seed(sweep_file):
    sweep = load_sweep(sweep_file)
    assert len(sweep.runs) == 2 * 2 * 2
    names = [run.config.run_name() for run in sweep.runs]
    assert len(set(names)) == 8 and "adding-t=8--lstm-fast-gate--s1" in names
    copy_fast = next(r.config for r in sweep.runs if r.task_label == "copy T=4" and "fast" in r.variant_label)
    assert copy_fast.train.steps == 20 and copy_fast.train.eval_every == 10  # task table wins over base
    assert copy_fast.model.gate == "fast" and copy_fast.model.hidden_size == 8
    assert copy_fast.model.forget_init == "chrono:4"
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def test_reproduce_runs_the_grid_writes_the_page_and_keeps_hand_written_text(sweep_file, tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text(f"# Tiny\n\nOur reading of the results.\n\n{BEGIN}\nold\n{END}\n\nMore prose.\n")
    assert main(["reproduce", str(sweep_file), "--quiet"]) == 0
    text = page.read_text()
    assert "Our reading of the results." in text and "More prose." in text and "old" not in text
    assert "8 of 8 runs finished" in text and "### adding T=8" in text and "### copy T=4" in text
    assert "| LSTM, fast gate | 2/2 |" in text
    assert (tmp_path / "page.png").read_bytes()[:4] == b"\x89PNG"

    summaries = sorted((tmp_path / "runs").glob("*/summary.json"))
    before = [p.read_text() for p in summaries]
    assert main(["reproduce", str(sweep_file), "--quiet"]) == 0  # finished runs are not run again
    assert [p.read_text() for p in summaries] == before


def test_parallel_jobs_give_the_same_results_as_one_job(sweep_file, tmp_path):
    sweep = load_sweep(sweep_file)
    sweep.runs = sweep.runs[:2]
    serial = run_sweep(sweep, jobs=1, quiet=True)
    for run in sweep.runs:
        run.config.out = str(tmp_path / "parallel")
    parallel = run_sweep(sweep, jobs=2, quiet=True)
    assert [s["test"] for s in serial] == [s["test"] for s in parallel]


def test_steps_to_solve_reads_the_first_passing_evaluation():
    summary = {"main_metric": "mse", "solved_at": 0.01, "higher_is_better": False}
    metrics = [{"step": 10, "val_mse": 0.2}, {"step": 20, "val_mse": 0.009}, {"step": 30, "val_mse": 0.001}]
    assert steps_to_solve(metrics, summary) == 20
    assert steps_to_solve(metrics[:1], summary) is None


def test_bad_sweep_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[tasks]]\nlabel = "x"\ntask = { name = "adding" }\n')
    with pytest.raises(UsageError, match=r"\[\[variants\]\]"):
        load_sweep(bad)
    bad.write_text('colour = 1\n')
    with pytest.raises(UsageError, match="unknown keys"):
        load_sweep(bad)
    with pytest.raises(UsageError, match="no experiment 'nope'"):
        from longrnn.cli import experiment_file

        experiment_file("nope")


def test_every_shipped_sweep_loads():
    root = Path(__file__).parent.parent / "experiments"
    for path in root.glob("*.toml"):
        text = path.read_text()
        if "[[variants]]" in text:
            sweep = load_sweep(path)
            assert sweep.runs and json.dumps([r.config.to_dict() for r in sweep.runs])
