"""Every file a run or a report reads, missing or damaged, gets one line naming it and what to do (exit 2);
a report reports the other runs and lists the damaged one; a log is never silently cut to fit."""

import json
import shutil
import subprocess
import sys

import pytest

from longrnn import runs
from longrnn.cli import main
from longrnn.reporting.report import report
from longrnn.runs.config import RunConfig, apply_overrides
from longrnn.training import train

TINY = ["task.name=adding", "task.seq_len=8", "task.validation_size=16", "task.test_size=16", "model.cell=gru",
        "model.hidden_size=4", "train.steps=4", "train.eval_every=2", "train.batch_size=4", "train.threads=1",
        "train.diagnostics=false"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    train(apply_overrides(RunConfig(out=str(out), name="r"), TINY), quiet=True)
    return out / "r"


@pytest.fixture
def two_runs(tmp_path, finished_run):
    for name in ("good", "bad"):
        shutil.copytree(finished_run, tmp_path / name)
    return tmp_path


def cli(*args):
    code = "import sys; from longrnn.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)


def damage(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("file", "command", "named"),
    [
        (runs.CHECKPOINT, "resume", "checkpoint.pt is damaged or is not a file of tensors"),
        (runs.MODEL, "eval", "model.pt is damaged or is not a file of tensors"),
        (runs.CONFIG, "eval", "config.toml' is not valid TOML"),
        ("hidden_size", "eval", "config.toml is damaged: model.hidden_size must be in [1, 10^6], got -8"),
        ("cell", "eval", "config.toml is damaged: unknown cell 'bogus'"),
        (runs.SUMMARY, "resume", "summary.json is damaged (not a JSON object)"),
        ("summary-shape", "resume", "summary.json is damaged ('status' is None)"),
    ],
)
def test_a_damaged_file_is_one_line_naming_it_and_exit_2(two_runs, capsys, file, command, named):
    run_dir = two_runs / "bad"
    if file == runs.CHECKPOINT:  # an interrupted run: no summary yet, so --resume reads the checkpoint
        (run_dir / runs.SUMMARY).unlink()
    if file == "summary-shape":  # valid JSON, not what a run writes
        (run_dir / runs.SUMMARY).write_text("{}")
    elif file == runs.CONFIG:
        (run_dir / file).write_text("[train\nsteps = ")
    elif file in ("hidden_size", "cell"):  # valid TOML, a value no run could have been trained with
        bad = {"hidden_size": ("hidden_size = 4", "hidden_size = -8"), "cell": ('cell = "gru"', 'cell = "bogus"')}
        text = (run_dir / runs.CONFIG).read_text()
        (run_dir / runs.CONFIG).write_text(text.replace(*bad[file]))
    else:
        damage(run_dir / file)
    if command == "resume":
        argv = ["train", "--config", str(run_dir / runs.CONFIG), "--out", str(two_runs), "--name", "bad", "--resume",
                "--quiet"]
    else:
        argv = ["eval", str(run_dir)]
    if file == runs.MODEL:  # one case as a real process: exit status, and torch.load's warnings of a fresh one
        result = cli(*argv)
        code, err = result.returncode, result.stderr
    else:  # in this process: an error main does not turn into its one line would raise here
        code, err = main(argv), capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and str(run_dir) in lines[0], err
    assert "Traceback" not in err and "weights_only=False" not in err


def test_a_report_reports_the_other_runs_and_names_the_damaged_one(two_runs):
    damage(two_runs / "bad" / runs.SUMMARY)
    text = report([two_runs], two_runs / "rep", plots=False)
    assert "| good |" in text and "| bad |" not in text
    assert "Not read (damaged files):" in text and f"{two_runs / 'bad' / runs.SUMMARY} is damaged" in text


def test_the_report_command_names_a_damaged_run_on_stderr_and_exits_1(two_runs):
    text = (two_runs / "bad" / runs.CONFIG).read_text()
    (two_runs / "bad" / runs.CONFIG).write_text(text.replace('cell = "gru"', 'cell = "bogus"'))
    result = cli("report", str(two_runs), "--out", str(two_runs / "rep"), "--no-plots")
    assert result.returncode == 1 and "| good |" in result.stdout and "| bad |" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("longrnn: warning: not read: ")
    assert "unknown cell 'bogus'" in lines[0]


def test_a_report_of_runs_it_cannot_read_draws_nothing_and_names_them(two_runs):
    (two_runs / "good" / runs.CONFIG).write_text("")  # read as defaults before
    (two_runs / "bad" / runs.CONFIG).unlink()  # its summary and weights stay: it was dropped unsaid before
    result = cli("report", str(two_runs), "--out", str(two_runs / "rep"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("longrnn: warning: not read: ") for line in lines)
    assert "lacks a [task], [model] or [train] table" in result.stderr and "config.toml is missing" in result.stderr


def test_a_metrics_log_damaged_inside_is_named_never_cut(two_runs):
    path = two_runs / "bad" / runs.METRICS
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1][:10], *lines[2:]]) + "\n")
    with pytest.raises(runs.DamagedFile, match=f"metrics.jsonl is damaged at line 2 of {len(lines)}"):
        runs.read_metrics(two_runs / "bad")


def test_a_metrics_log_whose_last_line_a_crash_cut_short_is_read_up_to_it(two_runs):
    path = two_runs / "bad" / runs.METRICS
    records = runs.read_metrics(two_runs / "bad")
    path.write_text(path.read_text() + json.dumps({"step": 99, "train_loss": 1.0})[:12])  # no newline: cut short
    assert runs.read_metrics(two_runs / "bad") == records


def test_init_from_a_file_that_is_not_a_state_dict_is_one_clear_error(tmp_path):
    import pickle

    from longrnn.errors import UsageError

    weights = tmp_path / "weights.pt"
    weights.write_bytes(pickle.dumps({"a": object()}, protocol=2))
    config = apply_overrides(RunConfig(out=str(tmp_path), name="r"), [*TINY, f"train.init_from={weights}"])
    with pytest.raises(UsageError, match="weights.pt is damaged or is not a file of tensors .*needs a state dict"):
        train(config, quiet=True)


SWEEP = """name = "g"
description = "A sweep over one damaged run."
results = "{root}/page.md"
out = "{root}/runs"
seeds = [0, 1]
[base.task]
name = "adding"
seq_len = 5
options = {{ validation_size = 8, test_size = 8 }}
[base.model]
hidden_size = 4
[base.train]
steps = 2
eval_every = 2
batch_size = 4
threads = 1
[[variants]]
label = "gru"
model = {{ cell = "gru" }}
"""


@pytest.mark.parametrize("file", [runs.SUMMARY, "failed.json"])
def test_a_sweep_over_a_damaged_run_is_one_line_before_anything_runs(tmp_path, capsys, file):
    """Not a failure recorded for the run (a failed.json over its good checkpoint), nor lines of progress."""
    from longrnn.cli import main

    (tmp_path / "g.toml").write_text(SWEEP.format(root=tmp_path))
    assert main(["sweep", str(tmp_path / "g.toml"), "--quiet", "--no-plots"]) == 0
    run_dir = tmp_path / "runs" / "adding--gru--s0"
    (run_dir / file).write_text('{"status": ')
    capsys.readouterr()
    for extra in ([], ["--report-only"]):
        assert main(["sweep", str(tmp_path / "g.toml"), "--quiet", "--no-plots", *extra]) == 2
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert out == "" and len(lines) == 1 and lines[0].startswith(f"longrnn: error: {run_dir / file} is damaged")
    if file == runs.SUMMARY:
        assert not (run_dir / "failed.json").exists()
    else:  # --retry-failed runs it again, and the record goes
        assert main(["sweep", str(tmp_path / "g.toml"), "--quiet", "--no-plots", "--retry-failed"]) == 0
        assert not (run_dir / "failed.json").exists()


@pytest.mark.parametrize(("edit", "named"), [
    (lambda s: s.pop("seed"), "('seed' is None)"),
    (lambda s: s.update(test={"mse": "abc"}), "test 'mse' is 'abc', not a number"),
    (lambda s: s.update(status="weird"), "status 'weird' is none of finished, solved, diverged"),
])
def test_a_summary_damaged_inside_is_named_and_the_rest_reported(two_runs, capsys, edit, named):
    from longrnn.cli import main

    path = two_runs / "bad" / runs.SUMMARY
    summary = json.loads(path.read_text())
    edit(summary)
    path.write_text(json.dumps(summary))
    assert main(["report", str(two_runs), "--out", str(two_runs / "rep"), "--no-plots"]) == 1
    out, err = capsys.readouterr()
    assert "good" in out and named in err and "Traceback" not in err


def test_undefined_scores_stay_undefined_in_reports_and_the_leaderboard(two_runs, capsys):
    """Two seeds whose scores are NaN: no crash, no 'nan ± 0', the mean of the defined values only."""
    from longrnn.cli import main

    good = json.loads((two_runs / "good" / runs.SUMMARY).read_text())
    config = (two_runs / "bad" / runs.CONFIG).read_text().replace("seed = 0", "seed = 1")
    (two_runs / "bad" / runs.CONFIG).write_text(config)
    bad = {**good, "seed": 1, "test": {k: float("nan") for k in good["test"]}}
    (two_runs / "bad" / runs.SUMMARY).write_text(json.dumps(bad))
    assert main(["report", str(two_runs), "--out", str(two_runs / "rep"), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert f"| {good['test']['mse']:.4g} ± 0 | 1/2 |" in out  # the defined seed alone; n says one is not
    page = two_runs / "board.md"
    assert main(["report", "--leaderboard", str(two_runs), "--page", str(page)]) == 0
