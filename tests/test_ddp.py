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
