"""A run interrupted between two checkpoints and resumed ends bit-identical to the run left alone, for
every trainer, MemUP detector, curriculum and the warm-up (the kill -9 versions, in a child process, are
in test_training.py)."""

from __future__ import annotations

import json

import pytest
import torch

import longrnn.tasks.base
import longrnn.training.trainer as trainer
from longrnn import runs
from longrnn.runs.config import RunConfig, apply_overrides
from longrnn.training import train

BASE = ["task.seq_len=10", "task.validation_size=16", "task.test_size=16", "model.cell=gru", "model.hidden_size=8",
        "train.steps=16", "train.eval_every=8", "train.batch_size=4", "train.threads=1",
        "train.diagnostics=false", "train.stop_when_solved=false"]
MEMUP = ["task.name=copy", "train.trainer=memup", "train.memup_rollout=5", "train.memup_hidden=8",
         "train.memup_context_len=12", "train.memup_targets=3"]
CASES = {
    "bptt": ["task.name=copy"],
    "tbptt": ["task.name=copy", "train.trainer=tbptt", "train.tbptt_len=4"],
    "bptt, curriculum": ["task.name=copy", "train.curriculum=4:5"],
    "bptt, warm-up": ["task.name=copy_first", "train.warmup=true", "train.warmup_num_steps=3",
                      "train.warmup_batch_size=4", "train.vaa=true", "train.vaa_steps=20", "train.vaa_samples=4"],
    "memup, ema detector": MEMUP,
    "memup, local detector": [*MEMUP, "train.memup_detector=local", "train.memup_local_samples=32"],
    "memup, local detector, curriculum": [*MEMUP, "train.memup_detector=local", "train.memup_local_samples=32",
                                          "train.curriculum=5:2"],
    "memup, streamed batches": [*MEMUP, "train.memup_chunk_len=5"],  # checkpoint in a batch's second chunk
    "memup, streamed batches, alternating": [*MEMUP, "train.memup_chunk_len=5", "train.memup_schedule=alternating",
                                             "train.memup_pretrain_steps=3", "train.memup_phase_steps=3"],
    "teacher forcing": ["task.name=lorenz63", "task.seq_len=20", "task.length=300", "model.cell=plrnn",
                        "train.trainer=teacher_forcing", "train.tf_interval=5"],
}


def _config(out, case: str) -> RunConfig:
    return apply_overrides(RunConfig(out=str(out), name="r"), [*BASE, *CASES[case]])


def _records(run_dir) -> list[dict]:
    drop = ("time", "warmup_seconds", "peak_memory_mb")
    return [{k: v for k, v in r.items() if k not in drop} for r in runs.read_metrics(run_dir)]


@pytest.mark.parametrize("case", CASES)
def test_a_resumed_run_ends_like_the_run_left_alone(tmp_path, monkeypatch, case):
    if "streamed" in case:
        monkeypatch.setattr(longrnn.tasks.base, "STREAM_BATCH_ABOVE_VALUES", 10)
    straight = train(_config(tmp_path / "a", case), quiet=True)

    penalty, calls = trainer.model_penalty, []

    def interrupt_at_step_10(*args, **kwargs):  # called once before the loop, then once per step
        calls.append(1)
        if len(calls) == 11:
            raise KeyboardInterrupt  # between the checkpoints of steps 8 and 16
        return penalty(*args, **kwargs)

    monkeypatch.setattr(trainer, "model_penalty", interrupt_at_step_10)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tmp_path / "b", case), quiet=True)
    monkeypatch.setattr(trainer, "model_penalty", penalty)
    assert not (tmp_path / "b" / "r" / runs.SUMMARY).exists()
    resumed = train(_config(tmp_path / "b", case), resume=True, quiet=True)

    assert resumed["steps"] == straight["steps"] == 16
    assert _records(tmp_path / "b" / "r") == _records(tmp_path / "a" / "r")
    assert json.dumps(resumed["test"]) == json.dumps(straight["test"])
    final = [torch.load(tmp_path / d / "r" / runs.CHECKPOINT, weights_only=True) for d in "ab"]
    for key in ("elapsed", "step_seconds", "warmup_seconds"):  # wall-clock times
        final[0].pop(key), final[1].pop(key)
    assert _differences(final[0], final[1]) == []


def _differences(a, b, path="checkpoint") -> list[str]:
    """Where two checkpoints differ: every tensor, number and generator state, recursively."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(map(str, a))} != {sorted(map(str, b))}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: {len(a)} != {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return [] if a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b) else [path]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]
