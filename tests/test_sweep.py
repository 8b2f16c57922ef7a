"""Sweeps from TOML, `longrnn reproduce`, and results pages that keep their hand-written text."""

import json
import re
from pathlib import Path

import pytest

from longrnn.cli import main
from longrnn.errors import UsageError
from longrnn.experiment.sweep import load_sweep, merge, run_sweep
from longrnn.reporting.results_page import BEGIN, END, steps_to_solve
from longrnn.runs.config import RunConfig

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
per_variant = {{ "LSTM, fast gate" = {{ train = {{ steps = 25 }} }} }}

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
    copy_plain = next(r.config for r in sweep.runs if r.task_label == "copy T=4" and "sigmoid" in r.variant_label)
    assert copy_plain.train.steps == 20 and copy_plain.train.eval_every == 10  # task table wins over base
    assert copy_fast.train.steps == 25  # per_variant: this task with this variant only
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
    assert "Other test metrics, adding T=8" in text and "| variant | correct |" in text  # the paper's P_correct
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


ONE_TASK_ONE_VARIANT = '[[tasks]]\nlabel = "x"\n[[variants]]\nlabel = "LSTM"\n'
BAD_SWEEPS = [
    ('[[tasks]]\nlabel = "x"\ntask = { name = "adding" }\n', r"\[\[variants\]\]"),
    ('[[tasks]]\nlabel = "x"\nper_variant = { "GRU" = { train = { steps = 5 } } }\n[[variants]]\nlabel = "LSTM"\n',
     r"per_variant names unknown variants \['GRU'\]"),
    ('[[tasks]]\nlabel = "x"\nvariants = ["GRU"]\n[[variants]]\nlabel = "LSTM"\n',
     r"variants names unknown variants \['GRU'\]"),
    ('curve_x = "time"\n' + ONE_TASK_ONE_VARIANT, "curve_x"),
    ('curve_rows = "model.colour"\n' + ONE_TASK_ONE_VARIANT,
     r"curve_rows = 'model.colour' names no config key \('colour'"),
    ('colour = 1\n', "unknown keys"),
]


@pytest.mark.parametrize("text, message", BAD_SWEEPS)
def test_bad_sweep_files(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_sweep(bad)


def test_an_unknown_experiment_is_a_usage_error():
    from longrnn.cli import experiment_file

    with pytest.raises(UsageError, match="no experiment 'nope'"):
        experiment_file("nope")


PAPER_REPRODUCTIONS = {"fastgate", "warmup", "rplrnn", "convexp", "memup"}


def test_a_task_can_run_some_variants_with_its_own_seeds(sweep_file, tmp_path):
    text = 'curve_x = "sequences"\ncurve_rows = "model.gate"\n' + sweep_file.read_text().replace(
        'per_variant = {', 'variants = ["LSTM, fast gate"]\nseeds = [5]\nper_variant = {')
    sweep_file.write_text(text)
    sweep = load_sweep(sweep_file)
    copy_runs = [(r.variant_label, r.config.train.seed) for r in sweep.runs if r.task_label == "copy T=4"]
    assert copy_runs == [("LSTM, fast gate", 5)]
    assert len(sweep.runs) == 2 * 2 + 1
    main(["sweep", str(sweep_file), "--quiet"])
    page = (tmp_path / "page.md").read_text()
    assert "(seeds 0, 1, 5)" in page
    copy_table = page.split("### copy T=4")[1]
    assert "| LSTM, fast gate | 1/1 |" in copy_table and "| LSTM, sigmoid |" not in copy_table
    from matplotlib.image import imread

    assert imread(tmp_path / "page.png").shape[0] == round(2 * 4.2 * 110)  # a row of panels per gate


def test_every_shipped_sweep_loads():
    root = Path(__file__).parent.parent / "experiments"
    for path in root.glob("*.toml"):
        text = path.read_text()
        if "[[variants]]" in text or "[grid]" in text:
            budgets = [None] + sorted(set(re.findall(r"^\[+budget\.(\w+)", text, flags=re.MULTILINE)))
            if path.stem in PAPER_REPRODUCTIONS:
                assert {"small", "paper"} <= set(budgets), f"{path.name}: needs a small and a paper budget"
            for budget in budgets:
                sweep = load_sweep(path, budget=budget)
                assert sweep.runs and json.dumps([r.config.to_dict() for r in sweep.runs])


GRID = """
name = "grid"
out = "{root}/runs"
seeds = [0]
[base.task]
name = "adding"
seq_len = 6
[base.train]
steps = 10
eval_every = 10
batch_size = 4
[base.model]
hidden_size = 4
[grid]
"model.cell" = ["lstm", "gru"]
"train.lr" = [0.001, 0.01]
"""


def test_a_grid_crosses_its_keys_and_the_base_task_is_the_task(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(GRID.format(root=tmp_path))
    sweep = load_sweep(path)
    cells_lrs = [(r.config.model.cell, r.config.train.lr) for r in sweep.runs]
    assert cells_lrs == [("lstm", 0.001), ("lstm", 0.01), ("gru", 0.001), ("gru", 0.01)]
    assert sweep.variant_labels == ["cell=lstm, lr=0.001", "cell=lstm, lr=0.01", "cell=gru, lr=0.001",
                                    "cell=gru, lr=0.01"]
    assert sweep.task_labels == ["adding"] and all(r.config.task.seq_len == 6 for r in sweep.runs)
    assert sweep.results == str(tmp_path / "runs" / "results.md")
    path.write_text(GRID.format(root=tmp_path) + '[[variants]]\nlabel = "two layers"\nmodel = { layers = 2 }\n')
    crossed = load_sweep(path)
    assert len(crossed.runs) == 4 and crossed.variant_labels[0] == "two layers, cell=lstm, lr=0.001"
    assert all(r.config.model.layers == 2 for r in crossed.runs)
    path.write_text(GRID.format(root=tmp_path).replace('["lstm", "gru"]', '"lstm"'))
    with pytest.raises(UsageError, match="grid key 'model.cell' needs a non-empty list"):
        load_sweep(path)


def test_a_failing_run_is_recorded_skipped_and_retried_on_request(tmp_path, capsys, monkeypatch):
    import longrnn.training

    path = tmp_path / "grid.toml"
    path.write_text(GRID.format(root=tmp_path))
    real_train = longrnn.training.train

    def flaky_train(config, **kwargs):
        if config.model.cell == "gru":
            raise RuntimeError("disk full")
        return real_train(config, **kwargs)

    monkeypatch.setattr(longrnn.training, "train", flaky_train)
    assert main(["sweep", str(path), "--quiet", "--no-plots"]) == 1
    assert "2 of 4 runs failed" in capsys.readouterr().err
    failures = sorted((tmp_path / "runs").glob("*/failed.json"))
    assert len(failures) == 2 and json.loads(failures[0].read_text())["message"] == "RuntimeError: disk full"
    finished = sorted((tmp_path / "runs").glob("*/summary.json"))
    assert len(finished) == 2
    monkeypatch.setattr(longrnn.training, "train", real_train)
    stamps = [p.stat().st_mtime_ns for p in finished + failures]
    assert main(["sweep", str(path), "--quiet", "--no-plots"]) == 1  # nothing is run again
    assert [p.stat().st_mtime_ns for p in finished + failures] == stamps
    assert main(["sweep", str(path), "--quiet", "--no-plots", "--retry-failed"]) == 0
    assert not list((tmp_path / "runs").glob("*/failed.json"))
    assert len(list((tmp_path / "runs").glob("*/summary.json"))) == 4
    assert [p.stat().st_mtime_ns for p in finished] == stamps[:2]  # finished runs were skipped


def test_a_budget_overrides_the_grid_and_writes_beside_the_full_one(sweep_file, tmp_path):
    text = sweep_file.read_text() + """
[budget.small]
seeds = [0]
base = { train = { steps = 5 } }

[[budget.small.tasks]]
label = "adding T=4"
task = { name = "adding", seq_len = 4 }
"""
    sweep_file.write_text(text)
    full, small = load_sweep(sweep_file), load_sweep(sweep_file, budget="small")
    assert len(full.runs) == 8 and len(small.runs) == 2
    assert {r.config.train.steps for r in small.runs} == {5} and small.runs[0].config.train.eval_every == 10
    assert small.out == full.out + "-small" and small.results == str(tmp_path / "page-small.md")
    # a file outside an experiments/ folder is run again with `longrnn sweep FILE`, not `reproduce NAME`
    assert small.command == f"longrnn sweep {sweep_file} --budget small"
    assert full.command == f"longrnn sweep {sweep_file}"
    (tmp_path / "experiments").mkdir()
    named = tmp_path / "experiments" / "tiny.toml"
    named.write_text(text)
    assert load_sweep(named, budget="small").command == "longrnn reproduce tiny --budget small"
    with pytest.raises(UsageError, match="no budget 'paper'; allowed: small"):
        load_sweep(sweep_file, budget="paper")


def test_a_killed_sweep_resumes_without_redoing_finished_runs(tmp_path):
    """SIGKILL the sweep once its first run has finished; the rerun keeps that run and completes the rest."""
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "grid.toml"
    path.write_text(GRID.format(root=tmp_path).replace("steps = 10", "steps = 200").replace("eval_every = 10",
                                                                                          "eval_every = 50"))
    command = [sys.executable, "-m", "longrnn.cli", "sweep", str(path), "--quiet", "--no-plots"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "runs").glob("*/summary.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/summary.json")}
    assert 1 <= len(finished) < 4
    assert main(["sweep", str(path), "--quiet", "--no-plots"]) == 0
    assert len(list((tmp_path / "runs").glob("*/summary.json"))) == 4
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in finished.items())


def test_a_finished_run_started_from_another_runs_weights_reruns_without_them(tmp_path):
    """A run continued from an earlier run of the same sweep is checked before its source has weights; a
    fresh clone holds finished runs without their model.pt (not committed): `reproduce` skips the finished
    continued run instead of refusing the sweep for the missing file."""
    path = tmp_path / "continued.toml"
    path.write_text(f"""
name = "continued"
results = "{tmp_path}/page.md"
out = "{tmp_path}/runs"
seeds = [0]
[base.train]
steps = 4
eval_every = 2
batch_size = 4
threads = 1
[base.model]
hidden_size = 4
[[tasks]]
label = "first"
task = {{ name = "adding", seq_len = 5 }}
[[tasks]]
label = "continued"
task = {{ name = "adding", seq_len = 5 }}
train = {{ init_from = "{tmp_path}/runs/first--gru--s0", lr = 0.01 }}
[[variants]]
label = "GRU"
model = {{ cell = "gru" }}
""")
    first = run_sweep(load_sweep(path), quiet=True)
    for run in (tmp_path / "runs").iterdir():
        (run / "model.pt").unlink()
    again = run_sweep(load_sweep(path), quiet=True)
    assert [s["test"] for s in again] == [s["test"] for s in first]


def test_runs_started_from_other_runs_of_the_sweep_wait_for_them_in_parallel_sweeps(tmp_path):
    from longrnn.experiment.sweep import dependency_waves

    def config(name, init_from=""):
        c = RunConfig(out=str(tmp_path), name=name)
        c.train.init_from = init_from
        return c

    configs = [config("a"), config("b", str(tmp_path / "a")), config("c", str(tmp_path / "b" / "model.pt")),
               config("d"), config("e", "/elsewhere/run")]
    assert dependency_waves(configs) == [[0, 3, 4], [1], [2]]
