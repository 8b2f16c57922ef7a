"""--log tensorboard/mlflow/wandb: what each tracker holds, read back with that library's own reader
(TensorBoard's event accumulator, mlflow.search_runs and its client, W&B's record definitions on the
offline run file), equals metrics.jsonl and summary.json; a resumed run continues the same tracker runs; a
sweep's runs are children of the sweep's run; a missing extra or unknown name is one line."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import longrnn.training.trainer as trainer
import wandb_records
from longrnn import runs
from longrnn.errors import UsageError
from longrnn.runs import trackers
from longrnn.runs.config import RunConfig, apply_overrides
from longrnn.training import train
from longrnn.training.build import build_task

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")
pytest.importorskip("wandb")

TINY = ["task.name=copy", "task.seq_len=10", "task.validation_size=16", "task.test_size=16", "model.cell=gru",
        "model.hidden_size=8", "train.steps=30", "train.eval_every=10", "train.batch_size=4", "train.threads=1",
        "train.stop_when_solved=false", "train.vaa=true", "train.vaa_steps=20", "train.vaa_samples=4",
        "train.log=tensorboard,mlflow,wandb"]


def _config(out: Path, *extra: str) -> RunConfig:
    return apply_overrides(RunConfig(out=str(out), name="r"), [*TINY, *extra])


def _expected(run_dir: Path, config: RunConfig) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} from metrics.jsonl, with the validation baseline at every evaluation."""
    baseline = build_task(config).baseline("validation")
    out: dict[str, dict[int, float]] = {}
    for record in runs.read_metrics(run_dir):
        values = trackers.scalars(record)
        if "phase" not in record:
            values.update({f"baseline/{k}": v for k, v in baseline.items()})
        for key, value in values.items():
            out.setdefault(key, {})[record["step"]] = value
    return out


def _search_runs(db: Path):
    """mlflow.search_runs on the store ``db``; the process's tracking URI (which mlflow.set_tracking_uri also
    puts into the environment, where the trackers of later runs would read it) is reset after."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{db.resolve()}")
    try:
        return mlflow.search_runs(experiment_names=["longrnn"])
    finally:
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """A run interrupted after its first checkpoint (step 10) and resumed: what every tracker must hold is
    the log of the run as it ended."""
    out = tmp_path_factory.mktemp("trackers")
    config = _config(out)
    monkeypatch = pytest.MonkeyPatch()
    penalty, calls = trainer.model_penalty, []

    def interrupt_at_step_15(*args, **kwargs):  # called once before the loop, then once per step
        calls.append(1)
        if len(calls) == 16:
            raise KeyboardInterrupt
        return penalty(*args, **kwargs)

    monkeypatch.setattr(trainer, "model_penalty", interrupt_at_step_15)
    with pytest.raises(KeyboardInterrupt):
        train(config, quiet=True)
    monkeypatch.undo()
    ids_after_interruption = json.loads((out / "r" / trackers.FILE).read_text())
    summary = train(config, resume=True, quiet=True)
    return out / "r", config, summary, ids_after_interruption


def test_tensorboard_holds_every_record_once_and_the_summary(resumed_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, config, summary, _ = resumed_run
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    expected = _expected(run_dir, config)
    assert {"validation/accuracy", "train/loss", "train/grad_norm", "train/lr", "system/peak_memory_mb",
            "baseline/accuracy", "validation/vaa"} <= set(expected)
    for key, by_step in expected.items():
        got = {e.step: e.value for e in events.Scalars(key)}
        assert got == pytest.approx(by_step, rel=1e-6), key  # the events after step 10 of the first try purged
    test = events.Scalars("summary/test/accuracy")
    assert [(e.step, e.value) for e in test] == [(30, pytest.approx(summary["test"]["accuracy"]))]
    assert "config" in events.Tags()["tensors"] or "config/text_summary" in events.Tags()["tensors"]


def test_mlflow_holds_params_metrics_summary_and_the_best_model(resumed_run):
    from mlflow.tracking import MlflowClient

    run_dir, config, summary, ids = resumed_run
    found = _search_runs(run_dir.parent / "mlflow.db")
    assert len(found) == 1, "the resumed run continued the run it started, not a second one"
    row = found.iloc[0]
    assert row["run_id"] == ids["mlflow"] and row["status"] == "FINISHED"
    assert row["params.train.lr"] == str(config.train.lr) and row["params.model.cell"] == "gru"
    assert row["metrics.summary/test/accuracy"] == pytest.approx(summary["test"]["accuracy"])
    assert row["tags.longrnn.status"] == summary["status"]
    client = MlflowClient(tracking_uri=f"sqlite:///{(run_dir.parent / 'mlflow.db').resolve()}")
    for key, by_step in _expected(run_dir, config).items():
        got = {m.step: m.value for m in client.get_metric_history(row["run_id"], key)}
        assert got == pytest.approx(by_step, rel=1e-6), key
    artifacts = {a.path for a in client.list_artifacts(row["run_id"])}
    assert {"model.pt", "summary.json", "config.toml"} <= artifacts
    local = Path(client.download_artifacts(row["run_id"], "model.pt", str(run_dir.parent / "download")))
    assert local.read_bytes() == (run_dir / runs.MODEL).read_bytes()


def test_wandb_offline_files_hold_config_history_and_summary(resumed_run):
    run_dir, config, summary, ids = resumed_run
    files = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2 and {wandb_records.run(f).run_id for f in files} == {ids["wandb"]}  # one run, resumed
    history = [row for f in files for row in wandb_records.history(f)]
    expected = _expected(run_dir, config)
    for key, by_step in expected.items():
        got = {row["_step"]: row[key] for row in history if key in row and row["_step"] in by_step}
        assert got == pytest.approx(by_step, rel=1e-6), key
    assert wandb_records.config(files[-1])["train.lr"] == config.train.lr
    final = wandb_records.summary(files[-1])
    assert final["summary/test/accuracy"] == pytest.approx(summary["test"]["accuracy"])
    assert final["status"] == "finished"


def test_a_sweeps_runs_are_children_of_the_sweeps_run(tmp_path):
    from longrnn.experiment.sweep import load_sweep, run_sweep

    grid = tmp_path / "tiny.toml"
    grid.write_text(f'name = "tiny"\nout = "{tmp_path / "out"}"\nseeds = [0, 1]\n'
                    '[base.task]\nname = "copy"\nseq_len = 10\nvalidation_size = 16\ntest_size = 16\n'
                    '[base.model]\ncell = "gru"\nhidden_size = 8\n'
                    '[base.train]\nsteps = 4\neval_every = 2\nbatch_size = 4\nlog = ["mlflow", "wandb"]\n'
                    '[[variants]]\nlabel = "gru"\n')
    run_sweep(load_sweep(grid), quiet=True)
    found = _search_runs(tmp_path / "out" / "mlflow.db")
    parent = found[found["tags.mlflow.runName"] == "tiny"]
    children = found[found["tags.mlflow.parentRunId"] == parent["run_id"].iloc[0]]
    assert len(parent) == 1 and parent["status"].iloc[0] == "FINISHED" and len(children) == 2
    groups = {wandb_records.run(f).run_group for f in (tmp_path / "out").glob("*/wandb/offline-run-*/run-*.wandb")}
    assert groups == {"tiny"}


def test_names_are_checked_and_a_missing_extra_is_one_line(monkeypatch):
    with pytest.raises(UsageError, match="unknown tracker 'tensorbored'; allowed: tensorboard, mlflow, wandb"):
        trackers.check("tensorbored")
    with pytest.raises(UsageError, match="names a tracker twice"):
        trackers.check("mlflow,mlflow")
    real = trackers.importlib.util.find_spec
    monkeypatch.setattr(trackers.importlib.util, "find_spec", lambda name: None if name == "wandb" else real(name))
    with pytest.raises(UsageError, match=r"--log wandb: wandb is not installed; .*pip install 'longrnn\[wandb\]'"):
        trackers.check("tensorboard,wandb")


def test_the_cli_takes_log_flags_and_toml_lists(tmp_path, capsys):
    from longrnn.cli import main
    from longrnn.runs.config import load

    assert main(["train", "--log", "tensorbored", "--out", str(tmp_path)]) == 2
    assert "invalid choice: 'tensorbored'" in capsys.readouterr().err
    (tmp_path / "c.toml").write_text('[train]\nlog = ["tensorboard", "mlflow"]\n')
    assert load(tmp_path / "c.toml").train.log == "tensorboard,mlflow"
    a, b = RunConfig(), load(tmp_path / "c.toml")
    assert a.identity() == b.identity(), "where a run is logged to is not part of what it computes"
    (tmp_path / "c.toml").write_text('[train]\nlog = [1]\n')
    with pytest.raises(UsageError, match=r'train.log names trackers: a list of names .* got \[1\]'):
        load(tmp_path / "c.toml")


def test_a_failing_tracker_is_named_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    def broken(self, step, values):
        raise OSError("disk full")

    monkeypatch.setattr(trackers.TensorBoard, "log", broken)
    summary = train(_config(tmp_path, "train.log=tensorboard", "train.vaa=false", "train.steps=10"), quiet=True)
    assert summary["status"] == "finished"
    err = capsys.readouterr().err
    assert "--log tensorboard stopped (OSError: disk full); the run goes on" in err and err.count("stopped") == 1


def test_a_resumed_run_whose_mlflow_run_is_gone_starts_a_new_one(tmp_path):
    config = _config(tmp_path, "train.log=mlflow")
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / trackers.FILE).write_text('{"mlflow": "0123456789abcdef0123456789abcdef"}')  # from another store
    tracked = trackers.Trackers(config, run_dir, resumed_step=10)
    try:
        assert set(tracked.active) == {"mlflow"}
        assert tracked.active["mlflow"].run_id != "0123456789abcdef0123456789abcdef"
        assert json.loads((run_dir / trackers.FILE).read_text())["mlflow"] == tracked.active["mlflow"].run_id
    finally:
        tracked.close(failed=False)


def test_a_store_that_cannot_be_reached_or_opened_is_dropped_at_once(tmp_path, monkeypatch, capsys):
    (tmp_path / "a" / "mlflow.db").mkdir(parents=True)  # the embedded store's place taken by a folder
    started = time.perf_counter()
    assert train(_config(tmp_path / "a", "train.log=mlflow", "train.vaa=false", "train.steps=10"),
                 quiet=True)["status"] == "finished"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    assert train(_config(tmp_path / "b", "train.log=mlflow", "train.vaa=false", "train.steps=10"),
                 quiet=True)["status"] == "finished"
    assert time.perf_counter() - started < 60, "MLflow's own retries would wait minutes"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("longrnn: --log mlflow stopped (") for line in err), err
    assert "is not a file" in err[0] and "127.0.0.1:9" in err[1]


def test_the_mlflow_store_follows_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        train(_config(tmp_path, "train.log=mlflow,tensorboard", "train.vaa=false", "train.steps=10"), quiet=True)
    finally:
        os.umask(old)
    for path in [tmp_path / "mlflow.db", *(tmp_path / "r" / "tensorboard").iterdir()]:
        assert path.stat().st_mode & 0o777 == 0o664, path
