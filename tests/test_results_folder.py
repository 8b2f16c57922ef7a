"""results/ holds only what the results pages read (scripts/check_results.py), and every run they expect."""

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _check_results():
    spec = importlib.util.spec_from_file_location("check_results", ROOT / "scripts" / "check_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


needs_git = pytest.mark.skipif(
    shutil.which("git") is None
    or subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True).returncode,
    reason="needs a git checkout (the check lists the files git tracks)",
)


@needs_git
def test_every_tracked_file_under_results_is_read_by_a_page():
    assert _check_results().unused_files(ROOT) == []


def test_every_run_a_committed_page_shows_is_there():
    """A page that exists was generated from its grid: none of that grid's runs may be missing."""
    check = _check_results()
    with_page = [sweep for sweep in check.sweeps(ROOT) if (ROOT / sweep.results).exists()]
    assert len(with_page) >= 10
    assert {sweep.command: check.missing_in(ROOT, sweep) for sweep in with_page} == {s.command: [] for s in with_page}


@needs_git
def test_a_file_no_page_reads_is_listed(monkeypatch):
    check = _check_results()
    tracked = check.tracked_results(ROOT)
    run = sorted(p for p in tracked if p.endswith("/summary.json"))[0].rsplit("/", 1)[0]
    planted = {f"{run}/warmup.json", "results/old-grid/x--y--s0/metrics.jsonl"}
    monkeypatch.setattr(check, "tracked_results", lambda root: tracked | planted)
    assert check.unused_files(ROOT) == sorted(planted)
