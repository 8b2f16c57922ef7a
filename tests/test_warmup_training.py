"""Warm-up and VAA monitoring inside training: the trainer, the CLI, reports and results pages."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from longrnn import runs
from longrnn.cells.double import DoubleCell
from longrnn.experiment.sweep import Sweep
from longrnn.reporting.report import report
from longrnn.reporting.results_page import vaa_table
from longrnn.runs.config import RunConfig, apply_overrides
from longrnn.training import train
from longrnn.training.build import build_model, build_task

WARM = ["train.warmup=true", "train.vaa_steps=300"]  # the default 100 warm-up steps


def tiny_config(tmp_path, *overrides) -> RunConfig:
    base = ["task.name=copy_first", "task.seq_len=20", "model.cell=gru", "model.hidden_size=16", "train.steps=30",
            "train.eval_every=10", "train.batch_size=16", "train.threads=1", "train.diagnostics=false",
            "task.validation_size=64", "task.test_size=64", f"out={tmp_path}"]
    return apply_overrides(RunConfig(), base + list(overrides))


def test_a_warmed_up_run_logs_vaa_before_and_after_and_reports_the_cost(tmp_path):
    summary = train(tiny_config(tmp_path, *WARM), quiet=True)
    run_dir = Path(summary["run_dir"])
    metrics = runs.read_metrics(run_dir)
    assert [m.get("phase") for m in metrics[:2]] == ["init", "warm-up"]
    assert all(m["step"] == 0 for m in metrics[:2])
    assert "val_vaa" not in metrics[2]  # without --vaa, no VAA at the evaluations
    init, after = summary["vaa"]["init"], summary["vaa"]["warm-up"]
    assert init < 0.2 and after > 0.8  # a GRU starts monostable; 100 warm-up steps make it multistable
    assert metrics[1]["warmup_vaa_star"][0] > 0.8
    history = json.loads((run_dir / runs.WARMUP).read_text())
    assert len(history["loss"]) == 100 and history["seconds"] == summary["warmup_seconds"] > 0
    ratio = summary["warmup_seconds"] / (summary["seconds_per_step"] * summary["steps"])
    assert summary["warmup_cost_ratio"] == pytest.approx(ratio)
    assert 0 <= summary["vaa"]["best"] <= 1


def test_vaa_is_logged_at_every_evaluation_without_warm_up(tmp_path):
    summary = train(tiny_config(tmp_path, "train.vaa=true", "train.vaa_steps=200"), quiet=True)
    metrics = runs.read_metrics(Path(summary["run_dir"]))
    assert [m.get("phase") for m in metrics] == ["init", None, None, None]
    assert all(1 / 64 <= m["val_vaa"] <= 1 for m in metrics)
    assert "warmup_seconds" not in summary and set(summary["vaa"]) == {"init", "best"}
    assert not (Path(summary["run_dir"]) / runs.WARMUP).exists()


def test_warm_up_changes_only_the_starting_weights(tmp_path):
    """Zero warm-up steps: the run equals the run without warm-up (same batches, same random state)."""
    plain = train(tiny_config(tmp_path / "plain"), quiet=True)
    zero = train(tiny_config(tmp_path / "zero", "train.warmup=true", "train.warmup_num_steps=0",
                             "train.vaa_steps=50"), quiet=True)
    assert zero["validation"] == plain["validation"] and zero["test"] == plain["test"]
    a = torch.load(Path(plain["run_dir"]) / runs.MODEL, weights_only=True)
    b = torch.load(Path(zero["run_dir"]) / runs.MODEL, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_warm_up_makes_a_gru_learn_copy_first_input_that_it_does_not_learn_without(tmp_path):
    """The paper's main claim at a tiny scale (T = 50, 300 steps): warm-up unlocks long-term memory."""
    settings = ["task.seq_len=50", "model.hidden_size=32", "train.steps=300", "train.eval_every=100",
                "train.batch_size=32", "train.lr=0.001", "task.validation_size=200", "task.test_size=500"]
    cold = train(tiny_config(tmp_path / "cold", *settings), quiet=True)
    warm = train(tiny_config(tmp_path / "warm", *settings, "train.warmup=true", "train.vaa_steps=1000"), quiet=True)
    assert cold["test"]["mse"] > 0.5 * cold["baseline"]["mse"]
    assert warm["test"]["mse"] < 0.2 * cold["test"]["mse"]


def test_a_non_finite_vaa_star_ends_the_run_as_diverged(tmp_path, monkeypatch):
    from longrnn.training import trainer

    def explode(*args, **kwargs):
        raise FloatingPointError("VAA* is not finite at warm-up step 3: [nan]")

    monkeypatch.setattr(trainer, "warm_up_before_training", explode)
    summary = train(tiny_config(tmp_path, *WARM), quiet=True)
    assert summary["status"] == "diverged" and "warm-up" in summary["message"] and "nan" in summary["message"]
    assert summary["steps"] == 0 and summary["test"] is None  # the test set is not read


def test_warm_up_acts_on_the_memory_of_a_memup_model(tmp_path):
    summary = train(tiny_config(tmp_path, *WARM, "train.trainer=memup", "train.memup_rollout=5",
                                "train.memup_targets=2", "train.memup_predict_every=5", "train.memup_hidden=8"),
                    quiet=True)
    assert summary["status"] == "finished" and summary["vaa"]["warm-up"] > summary["vaa"]["init"]


def test_double_builds_two_half_width_cells_per_layer(tmp_path):
    config = tiny_config(tmp_path, "model.double=true", "model.layers=2", "model.cell=nbrc")
    model = build_model(config, build_task(config))
    assert all(isinstance(c, DoubleCell) for c in model.cells)
    assert [c.first.hidden_size for c in model.cells] == [8, 8]


def _cli(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "longrnn.cli", "train", "--task", "copy_first", "--seq-len", "20",
                           "--hidden-size", "16", "--steps", "10", "--eval-every", "10", "--threads", "1",
                           "--out", str(tmp_path), "--quiet", *args], capture_output=True, text=True, check=False)


def test_cli_trains_an_nbrc_with_warm_up(tmp_path):
    result = _cli(tmp_path, "--cell", "nbrc", "--warmup", "--warmup-num-steps", "5", "--vaa-steps", "100")
    assert result.returncode == 0, result.stderr
    (run_dir,) = tmp_path.iterdir()
    assert (run_dir / runs.WARMUP).exists()


@pytest.mark.parametrize("args, message", [
    (["--warmup-target", "1.5"], "warmup_target must be in (0, 1]"),
    (["--warmup-batch-size", "1"], "warmup_batch_size must be >= 2"),
    (["--vaa-samples", "1"], "vaa_samples must be >= 2"),
    (["--warmup-lr", "0"], "warmup_lr must be > 0"),
    (["--vaa-steps", "0"], "vaa_steps"),
    (["--double", "--hidden-size", "15"], "must be even, got 15"),
])
def test_bad_warm_up_settings_exit_2_naming_the_value(tmp_path, args, message):
    result = _cli(tmp_path, "--cell", "gru", "--warmup", *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_report_draws_vaa_and_the_results_page_tabulates_it(tmp_path):
    train(tiny_config(tmp_path / "runs", *WARM), quiet=True)
    report([tmp_path / "runs"], tmp_path / "report")
    assert (tmp_path / "report" / "vaa.png").stat().st_size > 0
    config = tiny_config(tmp_path / "runs", *WARM)
    sweep = Sweep(name="w", description="", results=str(tmp_path / "page.md"), out=str(tmp_path / "runs"),
                  seeds=[0], runs=[], task_labels=["t"], variant_labels=["GRU, warm-up", "GRU"])
    summary = runs.read_summary(Path(config.out) / config.run_name())
    table = {("t", "GRU, warm-up"): [{"summary": summary, "metrics": []}], ("t", "GRU"): [None]}
    text = vaa_table(sweep, "t", table)
    assert "| GRU, warm-up |" in text and "| GRU |" not in text  # a variant without VAA gets no row
    assert f"{summary['vaa']['init']:.2g}" in text and "×" in text


def test_vaa_on_random_training_batches_is_logged_and_changes_no_training(tmp_path):
    from longrnn.errors import UsageError
    from longrnn.training.warmup_phase import measure_on_training_batches

    base = ["task.name=copy_first", "task.seq_len=8", "task.validation_size=8", "task.test_size=8", "model.cell=brc",
            "model.hidden_size=6", "train.steps=8", "train.eval_every=4", "train.batch_size=4", "train.threads=1",
            "train.stop_when_solved=false", "train.vaa=true", "train.vaa_steps=20", "train.vaa_samples=4"]
    plain = train(apply_overrides(RunConfig(out=str(tmp_path), name="plain"), base), quiet=True)
    config = apply_overrides(RunConfig(out=str(tmp_path), name="monitored"), [*base, "train.vaa_batches=3"])
    monitored = train(config, quiet=True)
    logs = [runs.read_metrics(Path(r["run_dir"])) for r in (plain, monitored)]
    timing = ("time", "peak_memory_mb", "train_vaa")
    assert [{k: v for k, v in m.items() if k not in timing} for m in logs[1]] == \
           [{k: v for k, v in m.items() if k not in timing} for m in logs[0]]  # the same training, batches and all
    assert [m["step"] for m in logs[1] if "train_vaa" in m] == [4, 8]
    model = build_model(config, build_task(config))
    model.load_state_dict(torch.load(Path(monitored["run_dir"]) / runs.CHECKPOINT, weights_only=True)["model"])
    again = measure_on_training_batches(config, model, build_task(config), torch.device("cpu"), 8)
    assert again == logs[1][-1]["train_vaa"] and 1 / 4 <= again <= 1  # VAA of batches of 4 lies in [1/4, 1]
    with pytest.raises(UsageError, match="train.vaa_batches = 3 applies to --vaa"):
        train(apply_overrides(RunConfig(out=str(tmp_path), name="x"), [*base, "train.vaa=false",
                                                                          "train.vaa_batches=3"]), quiet=True)
