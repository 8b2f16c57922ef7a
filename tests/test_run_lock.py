"""One writer per run directory (runs.RunLock): a second writer gets one line naming the first and exit 2;
the lock ends with its process, however it ends; a killed writer's temporary files are removed."""

import os
import signal
import subprocess
import sys
import time

import pytest

from longrnn import runs
from longrnn.errors import UsageError


def test_a_second_lock_names_the_holder_and_the_first_release_frees_it(tmp_path):
    with runs.RunLock(tmp_path):
        with pytest.raises(UsageError, match=f"being written by process {os.getpid()} on .*one writer"):
            runs.RunLock(tmp_path)
    with runs.RunLock(tmp_path):  # released: taken again
        pass


def test_taking_the_lock_removes_a_killed_writer_s_temporary_files(tmp_path):
    orphan = tmp_path / ".summary.json.k3x9q.tmp"
    orphan.write_text("{")
    (tmp_path / runs.SUMMARY).write_text("{}\n")
    with runs.RunLock(tmp_path):
        assert not orphan.exists() and (tmp_path / runs.SUMMARY).read_text() == "{}\n"


def _train_cmd(out, *extra):
    return [sys.executable, "-m", "longrnn.cli", "train", "--task", "adding", "--seq-len", "20", "--cell", "gru",
            "--hidden-size", "8", "--steps", "100000", "--eval-every", "5", "--batch-size", "8", "--threads", "1",
            "--no-diagnostics", "--no-stop-when-solved", "--out", str(out), "--name", "run", "--quiet", *extra]


def test_a_second_train_process_on_a_running_run_exits_2_and_the_run_resumes_after_a_kill(tmp_path):
    run_dir = tmp_path / "run"
    first = subprocess.Popen(_train_cmd(tmp_path))
    try:
        deadline = time.time() + 120
        while not (run_dir / runs.CHECKPOINT).exists() and time.time() < deadline:
            time.sleep(0.05)
        second = subprocess.run(_train_cmd(tmp_path, "--resume"), capture_output=True, text=True, check=False)
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"longrnn: error: run directory {str(run_dir)!r} is being written by process {first.pid} on "
            f"{os.uname().nodename}; wait for it to end or stop it (a run directory has one writer)"]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    lines = len(runs.read_metrics(run_dir))
    again = subprocess.Popen(_train_cmd(tmp_path, "--resume"))  # the kill freed the lock
    try:
        deadline = time.time() + 120
        while len(runs.read_metrics(run_dir)) <= lines and time.time() < deadline:
            time.sleep(0.05)
        assert len(runs.read_metrics(run_dir)) > lines
    finally:
        again.send_signal(signal.SIGKILL)
        again.wait()
    steps = [r["step"] for r in runs.read_metrics(run_dir)]
    assert steps == sorted(set(steps))  # one writer: no interleaved or repeated records
