"""A results page and the leaderboard print exactly the numbers of the run directories they read, checked on
run directories written by hand with known values (validation and test apart, steps to solve, every seed)."""

import json
from pathlib import Path

import pytest

from longrnn import runs
from longrnn.experiment.sweep import load_sweep
from longrnn.reporting.leaderboard import write_leaderboard
from longrnn.reporting.results_page import write_results_page
from longrnn.runs.config import to_toml

VALIDATION = {"A": {0: 0.81, 1: 0.83}, "B": {0: 0.21, 1: 0.23}}
TEST = {"A": {0: 0.71, 1: 0.75}, "B": {0: 0.11, 1: 0.15}}
SOLVED_AT_STEP = {"A": {0: 200, 1: None}, "B": {0: None, 1: None}}  # A seed 0 reaches 0.99 at step 200


def _summary(variant: str, seed: int) -> dict:
    return {
        "status": "finished", "main_metric": "accuracy", "higher_is_better": True, "solved_at": 0.99,
        "steps": 300, "best_step": 300, "seq_len": 30, "task": "copy", "cell": "gru", "seed": seed,
        "validation": {"accuracy": VALIDATION[variant][seed], "ce": 1.0},
        "test": {"accuracy": TEST[variant][seed], "ce": 2.0 + seed},
        "baseline": {"accuracy": 0.125, "ce": 0.3}, "expected_baseline": {"accuracy": 0.125, "ce": 0.3},
        "seconds_per_step": 0.002, "peak_memory_mb": 100.0, "wall_time_s": 10.0,
    }


def _metrics(variant: str, seed: int) -> list[dict]:
    solved = SOLVED_AT_STEP[variant][seed]
    return [{"step": s, "train_loss": 1.0, "val_accuracy": 0.995 if solved is not None and s >= solved else 0.5}
            for s in (100, 200, 300)]


@pytest.fixture
def sweep(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(f'out = "{tmp_path / "runs"}"\nresults = "{tmp_path / "page.md"}"\nseeds = [0, 1]\n'
                    '[base.task]\nname = "copy"\nseq_len = 10\n[base.train]\nsteps = 300\n'
                    '[[variants]]\nlabel = "A"\nmodel = { cell = "gru" }\n'
                    '[[variants]]\nlabel = "B"\nmodel = { cell = "rnn" }\n')
    sweep = load_sweep(path)
    for run in sweep.runs:
        run_dir = Path(run.config.out) / run.config.run_name()
        run_dir.mkdir(parents=True)
        seed = run.config.train.seed
        (run_dir / runs.CONFIG).write_text(to_toml(run.config))
        (run_dir / runs.SUMMARY).write_text(json.dumps(_summary(run.variant_label, seed)))
        (run_dir / runs.METRICS).write_text("".join(json.dumps(r) + "\n" for r in _metrics(run.variant_label, seed)))
    return sweep


def _row(page: str, variant: str) -> list[str]:
    line = next(line for line in page.splitlines() if line.startswith(f"| {variant} | 2/2"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_page_prints_validation_and_test_each_in_its_own_column(sweep):
    page = write_results_page(sweep, plots=False).read_text()
    a = _row(page, "A")
    assert a[:4] == ["A", "2/2", "1", ">300 (200, >300)"]  # median of 200 and never: not solved in budget
    assert a[4] == "0.82 ± 0.014"  # validation: mean ± std of 0.81, 0.83
    assert a[5] == "0.73 ± 0.028" and a[6] == "0.71, 0.75"  # test, then every seed
    b = _row(page, "B")
    assert b[2:7] == ["0", ">300 (>300, >300)", "0.22 ± 0.014", "0.13 ± 0.028", "0.11, 0.15"]
    assert "memoryless baseline on the test set: 0.125 (expected 0.125)" in page
    assert "| A | 2.5 ± 0.71 (2, 3) |" in page  # the other test metric (ce): mean ± std, every seed


def test_the_leaderboard_selects_on_validation_and_shows_test(sweep, tmp_path):
    page = tmp_path / "leaderboard.md"
    write_leaderboard([tmp_path / "runs"], page)
    text = page.read_text()
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| 10 |")}
    # T, method, test (mean ± std), n, solved, baseline, validation (selected on), steps
    assert rows["gru"][:8] == ["10", "gru", "0.73 ± 0.028 accuracy", "2", "0/2", "0.125", "0.82", "300"], text
    assert rows["rnn"][:8] == ["10", "rnn", "0.13 ± 0.028 accuracy", "2", "0/2", "0.125", "0.22", "300"], text
