"""A sweep through a real Ray head started on the loopback interface (skipped without the ray extra)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from longrnn.cli import main
from longrnn.experiment.sweep import load_sweep, run_sweep

# Token authentication off (a fresh head's token would not be this driver's), and every address kept
# on the loopback interface (by default Ray swaps 127.0.0.1 for the machine's network address). Ray
# reads these when it is imported, so they are set first, for the head and this driver alike.
os.environ.update({"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
ray = pytest.importorskip("ray")
RAY = str(Path(sys.executable).with_name("ray"))

SWEEP = """
name = "on-ray"
out = "{out}"
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
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    port = free_port()
    start = [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
             "--include-dashboard", "false", "--disable-usage-stats"]
    subprocess.run(start, check=True, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], check=False, capture_output=True, timeout=120)


def test_a_sweep_runs_as_tasks_on_a_ray_head(ray_head, tmp_path, capsys):
    path = tmp_path / "grid.toml"
    path.write_text(SWEEP.format(out=tmp_path / "runs"))
    assert main(["sweep", str(path), "--backend", "ray", "--address", ray_head, "--quiet", "--no-plots"]) == 0
    summaries = sorted((tmp_path / "runs").glob("*/summary.json"))
    assert len(summaries) == 2
    assert {json.loads(p.read_text())["cell"] for p in summaries} == {"lstm", "gru"}
    assert "2 of 2 runs finished" in (tmp_path / "runs" / "results.md").read_text()
    stamps = [p.stat().st_mtime_ns for p in summaries]
    assert main(["sweep", str(path), "--backend", "ray", "--address", ray_head, "--quiet", "--no-plots"]) == 0
    assert [p.stat().st_mtime_ns for p in summaries] == stamps  # finished runs are skipped

    local = load_sweep(path)
    for run in local.runs:
        run.config.out = str(tmp_path / "local")
    on_ray = [json.loads(p.read_text()) for p in summaries]
    here = run_sweep(local, quiet=True)
    assert sorted(s["test"]["mse"] for s in here) == sorted(s["test"]["mse"] for s in on_ray)
