"""Data-parallel training under torchrun: two CPU processes (gloo) train one run and stay identical."""

import json
import os
import socket
import subprocess
import sys

import pytest

TINY = ["--task", "adding", "--seq-len", "8", "--cell", "lstm", "--hidden-size", "8", "--steps", "6",
        "--eval-every", "3", "--batch-size", "4", "--threads", "1", "--quiet"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# truncated BPTT on copy reads out at every step: several forward calls of the DDP model before one backward
@pytest.mark.parametrize("trainer", [[], ["--task", "copy", "--trainer", "tbptt", "--tbptt-len", "8"]],
                         ids=["bptt", "tbptt"])
def test_two_processes_train_one_run_with_identical_parameters(tmp_path, trainer):
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
              "--master-port", str(free_port()), "-m", "longrnn.cli", "train", "--ddp", *TINY, *trainer,
              "--out", str(tmp_path / "runs")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(launch, check=False, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["parameters_identical"] is True
    assert summary["status"] == "finished" and summary["steps"] == 6
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [3, 6]  # written once, by process 0


def test_ddp_outside_torchrun_is_a_usage_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    result = subprocess.run([sys.executable, "-m", "longrnn.cli", "train", "--ddp", *TINY, "--out", str(tmp_path)],
                            check=False, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2 and "--ddp runs under torchrun" in result.stderr
    assert "Traceback" not in result.stderr


INTERRUPTED = """
import sys
import longrnn.training.trainer as trainer
from longrnn.cli import main

penalty, calls = trainer.model_penalty, []

def interrupt_at_step_10(*args, **kwargs):  # called once before the loop, then once per step
    calls.append(1)
    if len(calls) == 11:
        raise KeyboardInterrupt  # every process at the same step, between the checkpoints of steps 8 and 12
    return penalty(*args, **kwargs)

trainer.model_penalty = interrupt_at_step_10
sys.exit(main(sys.argv[1:]))
"""


def test_an_interrupted_ddp_run_resumes_to_the_uninterrupted_result(tmp_path):
    import torch

    args = ["train", "--ddp", "--task", "copy", "--seq-len", "5", "--cell", "gru", "--hidden-size", "8", "--steps",
            "12", "--eval-every", "4", "--batch-size", "4", "--threads", "1", "--quiet", "--no-diagnostics",
            "--name", "r"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def torchrun(*command):
        launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
                  "127.0.0.1", "--master-port", str(free_port()), *command]
        return subprocess.run(launch, check=False, capture_output=True, text=True, timeout=300, env=env)

    whole = torchrun("-m", "longrnn.cli", *args, "--out", str(tmp_path / "a"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED)
    assert torchrun(str(script), *args, "--out", str(tmp_path / "b")).returncode != 0
    assert not (tmp_path / "b" / "r" / "summary.json").exists()
    resumed = torchrun("-m", "longrnn.cli", *args, "--out", str(tmp_path / "b"), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    a, b = (json.loads((tmp_path / d / "r" / "summary.json").read_text()) for d in "ab")
    assert b["steps"] == a["steps"] == 12 and b["test"] == a["test"] and b["parameters_identical"] is True
    ckpt = [torch.load(tmp_path / d / "r" / "checkpoint.pt", weights_only=True) for d in "ab"]
    assert all(torch.equal(ckpt[0]["model"][k], ckpt[1]["model"][k]) for k in ckpt[0]["model"])
    assert all(torch.equal(x, y) for x, y in zip(ckpt[0]["generators"], ckpt[1]["generators"]))  # every process's
