"""A run's files and folders, and a report's, get the permissions the user's umask gives any new file:
a results folder shared with colleagues stays readable by the group (files were 0600 before)."""

from __future__ import annotations

import os
import stat

import pytest

from longrnn.reporting.report import report
from longrnn.runs.config import RunConfig, apply_overrides
from longrnn.training import train

TINY = ["task.name=copy", "task.seq_len=10", "task.validation_size=16", "task.test_size=16", "model.cell=gru",
        "model.hidden_size=8", "train.steps=4", "train.eval_every=2", "train.batch_size=4", "train.threads=1",
        "train.stop_when_solved=false"]


@pytest.mark.parametrize("umask", [0o002, 0o022, 0o077])
def test_every_file_a_run_and_its_report_write_follows_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        run = train(apply_overrides(RunConfig(out=str(tmp_path / "runs")), TINY), quiet=True)
        report([str(tmp_path / "runs")], html=True)
    finally:
        os.umask(old)
    written = [p for p in (tmp_path / "runs").rglob("*")]
    assert {p.name for p in written} >= {"config.toml", "metrics.jsonl", "summary.json", "model.pt", "checkpoint.pt",
                                         "report.md", "report.html", "report.csv", os.path.basename(run["run_dir"])}
    for p in written:
        mode = stat.S_IMODE(p.stat().st_mode)
        expected = (0o777 if p.is_dir() else 0o666) & ~umask
        assert mode == expected, f"{p.relative_to(tmp_path)}: {oct(mode)}, the umask {oct(umask)} gives {oct(expected)}"
