"""The trainer: real learning, determinism, divergence, truncation, early stop, resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from autograd_memory import bytes_saved_for_backward
from longrnn import runs
from longrnn.cells import detach_state
from longrnn.models import SequenceModel
from longrnn.runs.config import RunConfig, apply_overrides
from longrnn.tasks import make_task
from longrnn.training import train
from longrnn.training.bptt import tbptt_loss


def tiny_config(tmp_path, *overrides) -> RunConfig:
    base = ["task.name=adding", "task.seq_len=12", "model.cell=gru", "model.hidden_size=8",
            "train.steps=40", "train.eval_every=10", "train.batch_size=16", "train.threads=1",
            f"out={tmp_path}"]
    return apply_overrides(RunConfig(), base + list(overrides))


def _curve(run_dir):
    timing = ("time", "warmup_seconds", "peak_memory_mb")
    return [{k: v for k, v in r.items() if k not in timing} for r in runs.read_metrics(run_dir)]


@pytest.mark.slow
def test_lstm_learns_adding_well_below_the_memoryless_baseline(tmp_path):
    config = apply_overrides(RunConfig(), [
        "task.name=adding", "task.seq_len=50", "model.cell=lstm", "model.hidden_size=32",
        "train.steps=2500", "train.lr=0.01", "train.batch_size=32", "train.eval_every=50",
        "train.threads=1", "train.seed=0", f"out={tmp_path}"])
    summary = train(config, quiet=True)
    baseline = summary["baseline"]["mse"]
    assert summary["status"] == "solved"
    assert summary["test"]["mse"] < 0.1 * baseline, summary["test"]


def test_same_seed_gives_the_same_run(tmp_path):
    a = train(tiny_config(tmp_path / "a"), quiet=True)
    b = train(tiny_config(tmp_path / "b"), quiet=True)
    assert _curve(a["run_dir"]) == _curve(b["run_dir"])
    assert a["test"] == b["test"]
    c = train(tiny_config(tmp_path / "c", "train.seed=1"), quiet=True)
    assert _curve(c["run_dir"]) != _curve(a["run_dir"])


def test_run_directory_contents(tmp_path):
    summary = train(tiny_config(tmp_path), quiet=True)
    run_dir = summary["run_dir"]
    assert runs.read_config(run_dir) == tiny_config(tmp_path)
    curve = runs.read_metrics(run_dir)
    assert [r["step"] for r in curve] == [10, 20, 30, 40]
    assert {"train_loss", "val_mse", "val_correct", "lr", "gate_at_1", "timescale_p50"} <= set(curve[0])
    on_disk = runs.read_summary(run_dir)
    for key in ("status", "validation", "test", "baseline", "wall_time_s", "seconds_per_step", "peak_memory_mb",
                "versions", "seed"):
        assert key in on_disk
    assert on_disk["expected_baseline"]["mse"] == pytest.approx(1 / 6)
    assert on_disk["baseline"]["mse"] == pytest.approx(1 / 6, rel=0.1)
    state = torch.load(f"{run_dir}/model.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    # the best-on-validation weights are the ones kept
    best = min(curve, key=lambda r: r["val_mse"])
    assert on_disk["best_step"] == best["step"]
    assert on_disk["validation"]["mse"] == pytest.approx(best["val_mse"], rel=1e-5)


def test_the_model_sees_the_test_set_once_at_the_end(tmp_path, monkeypatch):
    from longrnn.training import trainer

    splits = []
    original = trainer.evaluate

    def recording(model, task, split, *args):
        splits.append(split)
        return original(model, task, split, *args)

    monkeypatch.setattr(trainer, "evaluate", recording)
    train(tiny_config(tmp_path), quiet=True)
    assert splits.count("test") == 1 and splits[-1] == "test"
    assert splits.count("validation") == 5  # four evaluations, then the best model once more


def test_a_diverging_run_is_recorded_as_diverged(tmp_path):
    config = tiny_config(tmp_path, "model.cell=irnn", "train.lr=1000.0", "train.clip=0.0", "task.seq_len=30")
    summary = train(config, quiet=True)
    assert summary["status"] == "diverged"
    assert "non-finite" in summary["message"]
    assert runs.read_summary(summary["run_dir"])["status"] == "diverged"


def test_solved_task_stops_early(tmp_path):
    config = tiny_config(tmp_path, "task.name=copy_first", "task.seq_len=3", "model.hidden_size=16",
                         "train.lr=0.01", "train.steps=3000", "train.eval_every=20")
    summary = train(config, quiet=True)
    assert summary["status"] == "solved"
    assert summary["steps"] < 3000
    assert summary["validation"]["mse"] <= 0.05


class _LastStepSum:
    readout = "all"

    def loss(self, y_pred, y):
        return y_pred[:, -1].sum()


@pytest.mark.parametrize("readout", ["last", "all"])
def test_truncated_bptt_cuts_gradients_at_chunk_boundaries(readout):
    torch.manual_seed(0)
    model = SequenceModel("lstm", 2, 6, 1, readout=readout)
    x = torch.randn(3, 12, 2, requires_grad=True)
    task = _LastStepSum() if readout == "all" else type("T", (), {"loss": staticmethod(lambda y, t: y.sum())})()
    tbptt_loss(model, task, x, None, k=4).backward()
    grad = x.grad.abs().sum(dim=(0, 2))
    assert torch.all(grad[:8] == 0)
    assert torch.all(grad[8:] > 0)


def _tbptt_keeping_every_chunk_graph(model, task, x, y, k):
    """The plain reference: truncated BPTT without checkpointing."""
    outputs, state = [], None
    for chunk in x.split(k, dim=1):
        y_chunk, state = model(chunk, state)
        outputs.append(y_chunk)
        state = [detach_state(s) for s in state]
    return task.loss(torch.cat(outputs, dim=1), y)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_checkpointed_tbptt_has_the_gradient_of_keeping_every_chunk_graph(cell):
    task = make_task("copy", seq_len=7)
    model = SequenceModel(cell, task.input_size, 8, task.output_size, readout="all").double()
    x, y = task.sample(3, torch.Generator().manual_seed(1))
    x = x.double()
    grads = []
    for loss_of in (tbptt_loss, _tbptt_keeping_every_chunk_graph):
        model.zero_grad()
        loss_of(model, task, x, y, 5).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for checkpointed, reference in zip(*grads):
        torch.testing.assert_close(checkpointed, reference, rtol=1e-12, atol=1e-12)


def _saved_bytes(loss_of, seq_len):
    task = make_task("copy", seq_len=seq_len)
    model = SequenceModel("lstm", task.input_size, 64, task.output_size, readout="all")
    x, y = task.sample(4, torch.Generator().manual_seed(0))
    return bytes_saved_for_backward(lambda: loss_of(model, task, x, y, 20))


def test_checkpointed_tbptt_keeps_a_small_part_of_the_activations():
    # What autograd keeps until the backward: with checkpointing, the outputs and each chunk's input
    # state; without, every step's gates and states.
    checkpointed = _saved_bytes(tbptt_loss, 800)
    everything = _saved_bytes(_tbptt_keeping_every_chunk_graph, 800)
    assert checkpointed < 0.2 * everything


def test_tbptt_trainer_runs(tmp_path):
    summary = train(tiny_config(tmp_path, "train.trainer=tbptt", "train.tbptt_len=5"), quiet=True)
    assert summary["status"] == "finished"
    summary = train(tiny_config(tmp_path, "train.trainer=tbptt", "task.name=copy", "task.seq_len=5"), quiet=True)
    assert summary["status"] in ("finished", "solved")


def _train_cmd(out, *extra):
    return [sys.executable, "-m", "longrnn.cli", "train", "--task", "copy", "--seq-len", "20", "--cell", "gru",
            "--hidden-size", "16", "--steps", "300", "--eval-every", "20", "--threads", "1",
            "--batch-size", "16", "--dropout", "0.0", "--out", str(out), "--name", "run", "--quiet", *extra]


WARM_UP = ["--warmup", "--warmup-num-steps", "20", "--vaa", "--vaa-steps", "200"]


@pytest.mark.parametrize("extra", [[], WARM_UP], ids=["plain", "warm-up"])
def test_resume_after_kill_ends_like_an_uninterrupted_run(tmp_path, extra):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    whole = subprocess.Popen(_train_cmd(tmp_path / "whole", *extra), env=env, stderr=subprocess.PIPE, text=True)
    killed_dir = tmp_path / "killed" / "run"  # (the uninterrupted run trains beside it, on the other core)
    proc = subprocess.Popen(_train_cmd(tmp_path / "killed", *extra), env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        steps = [r["step"] for r in runs.read_metrics(killed_dir)] if killed_dir.exists() else []
        if steps and steps[-1] >= 100 and (killed_dir / runs.CHECKPOINT).exists():
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed_dir / runs.SUMMARY).exists(), "the run finished before it could be killed"

    resumed = subprocess.run(_train_cmd(tmp_path / "killed", "--resume", *extra), env=env, capture_output=True,
                             text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert whole.wait() == 0, whole.stderr.read()
    assert _curve(killed_dir) == _curve(tmp_path / "whole" / "run")
    a = json.loads((killed_dir / runs.SUMMARY).read_text())
    b = json.loads((tmp_path / "whole" / "run" / runs.SUMMARY).read_text())
    for key in ("status", "steps", "best_step", "validation", "test", "vaa"):
        assert a.get(key) == b.get(key), key


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    first = train(tiny_config(tmp_path), quiet=True)
    summary_file = Path(first["run_dir"]) / "summary.json"
    before = summary_file.read_text()
    again = train(tiny_config(tmp_path), resume=True, quiet=True)
    assert summary_file.read_text() == before
    assert again["test"] == first["test"]


def test_gru_learns_real_digit_images_row_by_row(tmp_path):
    config = apply_overrides(RunConfig(), [
        "task.name=digits", "task.rows=true", "model.cell=gru", "model.hidden_size=32", "train.steps=300",
        "train.lr=0.01", "train.eval_every=100", "train.threads=1", f"out={tmp_path}"])
    summary = train(config, quiet=True)
    assert summary["test"]["accuracy"] > 0.8
    assert summary["baseline"]["accuracy"] < 0.6  # the last row alone: about half (the memoryless baseline)
    assert summary["test"]["accuracy"] > summary["baseline"]["accuracy"] + 0.25  # the GRU uses the other rows


def _resident_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def test_peak_memory_is_each_runs_own_when_runs_share_a_process(tmp_path):
    """A 400 MiB allocation freed before a run does not count in that run's peak (Linux resets VmHWM)."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc")
    train(tiny_config(tmp_path / "first"), quiet=True)  # imports and first-run allocations happen here
    before = _resident_mb()
    big = torch.ones(400 * 2**20 // 4)  # touched: it is resident
    del big
    summary = train(tiny_config(tmp_path / "second"), quiet=True)
    assert summary["peak_memory_mb"] < before + 200


# --- starting from another run's weights (--init-from) ------------------------------------------
def _initial_state(config: RunConfig) -> dict:
    """The weights a run starts from: its model after --init-from, before any step (steps=0 is refused)."""
    from longrnn.training.build import build_model, build_task
    from longrnn.training.init_from import load_initial_weights

    model = build_model(config, build_task(config))
    load_initial_weights(model, config.train.init_from)
    return model.state_dict()


def test_init_from_starts_a_longer_task_from_a_shorter_runs_best_weights(tmp_path):
    short = train(tiny_config(tmp_path, "train.seed=3"), quiet=True)
    best = torch.load(Path(short["run_dir"]) / runs.MODEL, weights_only=True)
    config = tiny_config(tmp_path, "task.seq_len=30", f"train.init_from={short['run_dir']}")
    assert all(torch.equal(best[k], v) for k, v in _initial_state(config).items())
    longer = train(config, quiet=True)
    assert longer["status"] == "finished" and runs.read_config(longer["run_dir"]).train.init_from == short["run_dir"]
    fresh = train(tiny_config(tmp_path, "task.seq_len=30"), quiet=True)
    assert longer["run_dir"] != fresh["run_dir"]  # the source is part of the run's identity
    assert _curve(longer["run_dir"]) != _curve(fresh["run_dir"])


def test_a_memup_memory_can_start_from_a_bptt_run(tmp_path):
    source = train(tiny_config(tmp_path, "task.name=copy", "task.seq_len=5", "model.cell=lstm"), quiet=True)
    config = tiny_config(tmp_path, "task.name=copy", "task.seq_len=20", "model.cell=lstm",
                         "train.trainer=memup", "train.memup_rollout=5", f"train.init_from={source['run_dir']}")
    best = torch.load(Path(source["run_dir"]) / runs.MODEL, weights_only=True)
    state = _initial_state(config)
    assert all(torch.equal(state[f"memory.{k}"], v) for k, v in best.items())
    assert any(k.startswith("predictor.") for k in state)  # the predictor starts fresh
    assert train(config, quiet=True)["status"] == "finished"


@pytest.mark.parametrize("source, message", [
    ("nowhere", "no weights at"),
    ("other-size", "do not fit this model .*of another shape: layers.0.cell.weight_ih"),
])
def test_init_from_a_missing_or_misfit_source_is_a_usage_error(tmp_path, source, message):
    from longrnn.errors import UsageError

    if source == "other-size":
        source = train(tiny_config(tmp_path, "model.hidden_size=4"), quiet=True)["run_dir"]
    with pytest.raises(UsageError, match=message):
        train(tiny_config(tmp_path / "new", f"train.init_from={source}"), quiet=True)


# --- length curricula (--curriculum LEN:BATCHES,...) ----------------------------------------------
def _training_lengths(monkeypatch, batch_size: int) -> list:
    """Record the length of every batch of ``batch_size`` sequences the copy task draws."""
    from longrnn.tasks.copy import Copy

    lengths, sample = [], Copy.sample

    def recording(self, n, generator):
        x, y = sample(self, n, generator)
        if n == batch_size:
            lengths.append(x.shape[1])
        return x, y

    monkeypatch.setattr(Copy, "sample", recording)
    return lengths


def test_curriculum_trains_on_each_stages_length_then_the_tasks_own(tmp_path, monkeypatch):
    lengths = _training_lengths(monkeypatch, batch_size=3)
    config = tiny_config(tmp_path, "task.name=copy", "task.seq_len=20", "train.batch_size=3", "train.steps=14",
                         "train.eval_every=7", "train.curriculum=5:6,10:4")
    summary = train(config, quiet=True)
    assert lengths == [25] * 6 + [30] * 4 + [40] * 4  # copy: delay + 20 steps
    assert summary["seq_len"] == 40 and summary["steps"] == 14  # evaluated at the task's own length


def test_memup_stages_count_batches_not_rollouts(tmp_path, monkeypatch):
    lengths = _training_lengths(monkeypatch, batch_size=3)
    config = tiny_config(tmp_path, "task.name=copy", "task.seq_len=20", "model.cell=lstm", "train.batch_size=3",
                         "train.steps=9", "train.eval_every=9", "train.trainer=memup", "train.memup_rollout=5",
                         "train.curriculum=5:1")
    train(config, quiet=True)
    assert lengths == [25, 40]  # one batch of the stage: 5 rollouts (steps 0-4), then the task's own length
    from longrnn.training.curriculum import batch_counter

    batches = batch_counter(config)
    assert [batches(s) for s in (0, 1, 5, 6, 9, 13, 14)] == [0, 1, 1, 2, 2, 2, 3]  # 8 rollouts of 40
    config.train.trainer = "bptt"
    assert batch_counter(config)(9) == 9


@pytest.mark.parametrize("curriculum, message", [
    ("10-5", "'10-5' is not LENGTH:BATCHES"),
    ("10:0", "'10:0' is not LENGTH:BATCHES"),
    ("a:5,", "'a:5' is not LENGTH:BATCHES"),
    ("5:30,10:10", "takes 40 batches, so none of the run's 40 steps"),
])
def test_bad_curricula_are_usage_errors(tmp_path, curriculum, message):
    from longrnn.errors import UsageError

    with pytest.raises(UsageError, match=message):
        train(tiny_config(tmp_path, f"train.curriculum={curriculum}"), quiet=True)
    assert not list(tmp_path.iterdir())  # refused before a run directory is made
