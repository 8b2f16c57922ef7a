"""Which files under results/ does no results page read, and which runs does a page expect but lack?

The pages under docs/results/ are regenerated from the committed run directories only (results/README.md):

* ``longrnn reproduce NAME --report-only [--budget B]`` rewrites the page of ``experiments/NAME.toml``.
  For every run the sweep defines (`longrnn.experiment.sweep.load_sweep`) it reads ``summary.json``; a
  run without one counts as not finished; of a finished run it also reads ``metrics.jsonl``
  (`longrnn.reporting.results_page.collect`), and, when the summary holds a ``reconstruction`` score,
  the page may draw its ``generated.npy`` (`longrnn.reporting.reconstruction_page.plot_attractors`
  loads the median seed's file, chosen among the runs that have one, so every such file counts as
  read). ``config.toml`` counts as read for every run a sweep defines: it is what makes a folder a run
  directory, and ``reproduce`` without ``--report-only`` reads it to resume the run. So does the
  ``data.json`` of a run on a user's data: resuming it, ``eval`` and ``dsr eval`` read it to check
  that the data are the ones it was trained on (`longrnn.training.build.check_data`).
* ``longrnn report --leaderboard`` rewrites docs/results/leaderboard.md from every run directory
  under ``results/``, whether or not a sweep still defines it: each one's ``summary.json``, and the
  ``config.toml`` of those it keeps (`longrnn.reporting.leaderboard.collect`).
* Nothing reads ``warmup.json`` or ``failed.json``; ``model.pt`` and ``checkpoint.pt`` are
  git-ignored. ``results/README.md`` explains the folder.

Printed on stdout: every file under results/ that git tracks (``git ls-files results``) and that no
page reads, one per line; the exit status is 1 if there is any, else 0. On stderr: per sweep and
budget, how many of its runs are finished, and the run directories it expects but lacks, absent or
unfinished (a directory without ``summary.json``: the page shows it as not finished, and its files
are listed as unused until it finishes). Missing runs do not change the exit status (budgets that
were never run, e.g. ``paper``, miss all of theirs).

    python scripts/check_results.py [REPO_ROOT]
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from longrnn import runs
from longrnn.errors import UsageError
from longrnn.experiment.sweep import Sweep, load_sweep
from longrnn.reporting import leaderboard
from longrnn.training.build import DATA
from longrnn.training.reconstruction import GENERATED

LEADERBOARD_RUNS = "results"  # what `longrnn report --leaderboard` reads by default
README = "results/README.md"


def tracked_results(repo_root: Path) -> set[str]:
    """Files under results/ that git tracks, relative to the repository root."""
    out = subprocess.run(["git", "ls-files", "-z", "results"], cwd=repo_root, capture_output=True,
                         text=True, check=True).stdout
    return {path for path in out.split("\0") if path}


def budgets(path: Path) -> list[str | None]:
    """None (the default grid) and the names of the file's ``[budget.NAME]`` tables."""
    return [None, *sorted(tomllib.loads(path.read_text()).get("budget", {}))]


def sweeps(repo_root: Path, skipped: list[str] | None = None) -> list[Sweep]:
    """Every sweep of experiments/*.toml under every budget, loaded by the library. Files it rejects
    are the single-run configs kept there (adding_lstm.toml, ...): they go to ``skipped``."""
    found = []
    for path in sorted((repo_root / "experiments").glob("*.toml")):
        for budget in budgets(path):
            try:
                found.append(load_sweep(path, budget))
            except UsageError as e:
                if skipped is not None:
                    skipped.append(str(e))
    return found


def run_dir(repo_root: Path, run) -> Path:
    """A run's directory; ``out`` in a sweep file is relative to the repository root."""
    return repo_root / run.config.out / run.config.run_name()


def page_inputs(directory: Path) -> list[Path]:
    """The files of one run directory that its sweep's results page reads."""
    summary = runs.read_summary(directory)
    if summary is None:  # not finished: the page only sees that summary.json is not there
        return []
    inputs = [directory / runs.CONFIG, directory / runs.SUMMARY, directory / runs.METRICS]
    if (directory / DATA).exists():
        inputs.append(directory / DATA)
    if "reconstruction" in summary:
        inputs.append(directory / GENERATED)
    return inputs


def leaderboard_inputs(repo_root: Path) -> list[Path]:
    """The files the leaderboard reads: every run's summary.json, the kept runs' config.toml."""
    root = repo_root / LEADERBOARD_RUNS
    if not root.is_dir():
        return []
    inputs = []
    for directory in runs.find_runs([root]):
        inputs.append(directory / runs.SUMMARY)
        if leaderboard.collect([directory]):  # the leaderboard's own test of a run it keeps
            inputs.append(directory / runs.CONFIG)
    return inputs


def read_files(repo_root: Path) -> set[str]:
    """Every file some page reads, relative to the repository root."""
    inputs = [repo_root / README, *leaderboard_inputs(repo_root)]
    for sweep in sweeps(repo_root):
        for run in sweep.runs:
            inputs += page_inputs(run_dir(repo_root, run))
    return {path.relative_to(repo_root).as_posix() for path in inputs}


def unused_files(repo_root) -> list[str]:
    """Tracked files under results/ that no results page reads, sorted."""
    repo_root = Path(repo_root).resolve()
    return sorted(tracked_results(repo_root) - read_files(repo_root))


def missing_in(repo_root: Path, sweep: Sweep) -> list[tuple[str, str]]:
    """(run directory, "absent" or "unfinished") for every run of the sweep without summary.json."""
    missing = []
    for run in sweep.runs:
        directory = run_dir(repo_root, run)
        if not (directory / runs.SUMMARY).exists():
            state = "unfinished" if directory.exists() else "absent"
            missing.append((directory.relative_to(repo_root).as_posix(), state))
    return missing


def missing_runs(repo_root) -> list[tuple[str, str, str]]:
    """(command that regenerates the page, run directory, "absent" or "unfinished") for every run a
    page expects that has no summary.json."""
    repo_root = Path(repo_root).resolve()
    return [(sweep.command, directory, state) for sweep in sweeps(repo_root)
            for directory, state in missing_in(repo_root, sweep)]


def report_missing(repo_root: Path) -> None:
    """On stderr, per sweep and budget: the runs finished of those expected, then the missing ones
    where some have finished (a budget with none finished was never run: its one line says so)."""
    skipped: list[str] = []
    for sweep in sweeps(repo_root, skipped):
        missing = missing_in(repo_root, sweep)
        finished = len(sweep.runs) - len(missing)
        print(f"{sweep.command} -> {sweep.results}: {finished} of {len(sweep.runs)} runs finished", file=sys.stderr)
        if finished:
            for directory, state in missing:
                print(f"    {state}: {directory}", file=sys.stderr)
    for note in skipped:
        print(f"not a sweep, skipped: {note}", file=sys.stderr)


def main(argv: list[str]) -> int:
    repo_root = (Path(argv[1]) if len(argv) > 1 else Path(__file__).parents[1]).resolve()
    unused = unused_files(repo_root)
    for path in unused:
        print(path)
    report_missing(repo_root)
    print(f"{len(unused)} tracked files under results/ are read by no page", file=sys.stderr)
    return 1 if unused else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
