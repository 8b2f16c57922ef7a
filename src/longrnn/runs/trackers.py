"""Experiment trackers: a run's curves, config and summary mirrored into TensorBoard, MLflow or Weights &
Biases (``train.log``, the CLI's ``--log NAME``, any combination; each an optional extra).

``metrics.jsonl`` stays the record a run is resumed, reported and scored from; a tracker receives a copy of
each of its records (`Trackers.log`), named by `tag`: ``val_acc`` -> ``validation/acc``, ``train_loss`` ->
``train/loss``, ``lr`` -> ``train/lr``, ``peak_memory_mb`` -> ``system/peak_memory_mb``, the gate
diagnostics under ``diagnostics/``, and beside them ``baseline/METRIC``, the task's memoryless baseline on
the validation set as a constant line. The config goes in as hyperparameters (`hyperparameters`), the
summary at the end (`summary_scalars`), and MLflow keeps the best weights (model.pt) as an artifact.

Defaults that need no server, so a laptop or a cluster node without network logs as it is:

* ``tensorboard``: event files in ``RUN/tensorboard`` (``tensorboard --logdir OUT`` shows every run below);
* ``mlflow``: a SQLite store ``OUT/mlflow.db``, artifacts in ``OUT/mlartifacts``, experiment ``longrnn``
  (``mlflow ui --backend-store-uri sqlite:///OUT/mlflow.db``); ``MLFLOW_TRACKING_URI`` and
  ``MLFLOW_EXPERIMENT_NAME`` replace them;
* ``wandb``: offline mode, files in ``RUN/wandb`` (``wandb sync RUN/wandb/offline-run-*`` uploads them),
  project ``longrnn``; ``WANDB_MODE`` and ``WANDB_PROJECT`` replace them.

A run of a sweep is a child of the sweep: MLflow's ``mlflow.parentRunId`` names the sweep's run, W&B's
group is the sweep's name (both read from ``OUT/trackers.json``, which `open_sweep` writes). A resumed run
continues the same tracker runs (their ids are kept in ``RUN/trackers.json``); TensorBoard drops the events
after the checkpoint it resumes from (``purge_step``), MLflow keeps them (its metric history cannot be cut).
A tracker that fails while a run trains is named in one line and dropped: the run goes on.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

from longrnn.errors import UsageError
from longrnn.runs.directory import write_json

TRACKERS = ("tensorboard", "mlflow", "wandb")
FILE = "trackers.json"  # RUN/trackers.json: this run's tracker ids; OUT/trackers.json: the sweep's
PROJECT = "longrnn"  # MLflow's experiment and W&B's project unless the environment names another


def parse(text: str) -> list[str]:
    """The tracker names of ``train.log`` ("tensorboard,mlflow"; "" for none), checked: a name not in
    `TRACKERS` or a repeated one is a UsageError naming it."""
    if not isinstance(text, str):
        raise UsageError(f"train.log must name trackers, e.g. 'tensorboard,mlflow', got {text!r}")
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in TRACKERS:
            raise UsageError(f"train.log: unknown tracker {name!r}; allowed: {', '.join(TRACKERS)}")
    if len(set(names)) < len(names):
        raise UsageError(f"train.log names a tracker twice: {text!r}")
    return names


def check(text: str) -> list[str]:
    """`parse`, and each tracker's extra installed (a missing one is a one-line UsageError naming it)."""
    names = parse(text)
    for name in names:
        if importlib.util.find_spec(name) is None:
            raise UsageError(f"--log {name}: {name} is not installed; install the extra: pip install 'longrnn[{name}]'")
    return names


GROUPS = {"val": "validation", "train": "train", "warmup": "warmup"}
OTHERS = {"lr": "train/lr", "grad_norm": "train/grad_norm", "time": "system/time_s",
          "peak_memory_mb": "system/peak_memory_mb"}


def tag(key: str) -> str:
    """A metrics.jsonl key as trackers show it: grouped by what it measures (``val_acc`` -> ``validation/acc``,
    ``gate_at_1`` -> ``diagnostics/gate_at_1``)."""
    if key in OTHERS:
        return OTHERS[key]
    head, _, rest = key.partition("_")
    if head in ("gate", "timescale"):
        return f"diagnostics/{key}"
    return f"{GROUPS[head]}/{rest}" if head in GROUPS and rest else key


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def scalars(record: dict) -> dict[str, float]:
    """The numbers of one metrics record under their `tag` (text such as ``phase`` and ``step`` left out)."""
    return {tag(k): float(v) for k, v in record.items() if k != "step" and _number(v)}


def summary_scalars(summary: dict) -> dict[str, float]:
    """The numbers of summary.json a tracker shows at the end: the best weights' validation and test scores,
    the test set's memoryless baseline, steps, wall time, seconds per step and peak memory."""
    out = {}
    for part in ("validation", "test", "baseline"):
        for metric, value in (summary.get(part) or {}).items():
            if _number(value):
                out[f"summary/{part}/{metric}"] = float(value)
    for key in ("steps", "best_step", "wall_time_s", "seconds_per_step", "peak_memory_mb", "n_parameters"):
        if isinstance(summary.get(key), (int, float)):
            out[f"summary/{key}"] = float(summary[key])
    return out


def hyperparameters(config) -> dict:
    """The run's config flattened to dotted keys (``train.lr``, ``task.options.data``), each value a bool,
    number or text (a list or None as its text), as trackers store hyperparameters."""
    flat = {}

    def walk(prefix: str, d: dict) -> None:
        for key, value in d.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            else:
                flat[f"{prefix}{key}"] = value if isinstance(value, (bool, int, float, str)) else json.dumps(value)

    walk("", config.to_dict())
    return flat


def _first_line(e: Exception) -> str:
    """``"OSError: disk full"``: an error's type and the first 200 characters of its message's first line."""
    return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"


def _read_ids(path: Path) -> dict:
    try:
        ids = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return ids if isinstance(ids, dict) else {}


# MLflow retries a request to a server 7 times over about 4 minutes and waits 120 s for an answer: a run
# would stall that long on a server that is down. While a tracker works, unless the user set them:
WAITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


@contextlib.contextmanager
def bounded_waits():
    """`WAITS` in the environment for the duration (a value the user set is kept), then as it was."""
    added = {k: v for k, v in WAITS.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


class TensorBoard:
    """Event files in ``RUN/tensorboard`` through torch's SummaryWriter."""

    def __init__(self, run_dir: Path, config, ids: dict, parent: dict, resumed_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resumed_step + 1 if resumed_step else None)
        self.hparams = {k: v if not isinstance(v, bool) else str(v) for k, v in hyperparameters(config).items()}
        if not resumed_step:
            from longrnn.runs.config import to_toml

            self.writer.add_text("config", "    " + to_toml(config).replace("\n", "\n    "), 0)

    def log(self, step: int, values: dict) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def finish(self, summary: dict, values: dict, run_dir: Path) -> None:
        from torch.utils.tensorboard.summary import hparams

        for key, value in values.items():
            self.writer.add_scalar(key, value, summary.get("steps") or 0)
        for event in hparams(self.hparams, {k: v for k, v in values.items() if math.isfinite(v)}):
            self.writer.file_writer.add_summary(event)
        self.writer.add_text("summary", f"status: {summary.get('status')} {summary.get('message') or ''}".strip(),
                             summary.get("steps") or 0)
        self.writer.close()

    def close(self, failed: bool) -> None:
        self.writer.close()


class MLflow:
    """A run in MLflow's tracking store (default: SQLite under ``OUT``), a child of the sweep's run."""

    def __init__(self, run_dir: Path, config, ids: dict, parent: dict, resumed_step: int):
        self.client, experiment = mlflow_client(Path(config.out))
        from mlflow.exceptions import MlflowException

        self.run_id = ids.get("mlflow")
        if self.run_id is not None:
            try:
                self.client.update_run(self.run_id, status="RUNNING")
                return
            except MlflowException:  # the store no longer holds it (a new store, say): the run starts a new one
                self.run_id = None
        tags = {"mlflow.parentRunId": parent["mlflow"]} if parent.get("mlflow") else {}
        self.run_id = self.client.create_run(experiment, run_name=config.run_name(), tags=tags).info.run_id
        ids["mlflow"] = self.run_id
        from mlflow.entities import Param

        params = [Param(k, str(v)) for k, v in hyperparameters(config).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def log(self, step: int, values: dict) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])

    def finish(self, summary: dict, values: dict, run_dir: Path) -> None:
        self.log(summary.get("steps") or 0, values)
        self.client.set_tag(self.run_id, "longrnn.status", summary.get("status", ""))
        for name in ("model.pt", "summary.json", "config.toml"):
            if (run_dir / name).exists():
                self.client.log_artifact(self.run_id, str(run_dir / name))
        self.client.set_terminated(self.run_id, "FINISHED")

    def close(self, failed: bool) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if failed else "KILLED")


def mlflow_client(out: Path):
    """MLflow's client and the id of the experiment to log to: ``MLFLOW_TRACKING_URI`` and
    ``MLFLOW_EXPERIMENT_NAME`` if set, else a SQLite store and an artifact folder under ``out``."""
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.ERROR)  # its store's INFO lines and retry warnings

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        db = out.resolve() / "mlflow.db"
        if db.exists() and not db.is_file():  # MLflow would retry for two minutes before it gives up
            raise FileExistsError(f"{db} exists and is not a file")
        db.parent.mkdir(parents=True, exist_ok=True)
        db.touch()  # made here, so that it has the umask's permissions (SQLite's own are 0644)
        uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri)
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or PROJECT
    found = client.get_experiment_by_name(name)
    if found is not None:
        return client, found.experiment_id
    location = None if os.environ.get("MLFLOW_TRACKING_URI") else (out.resolve() / "mlartifacts").as_uri()
    return client, client.create_experiment(name, artifact_location=location)


class WandB:
    """A Weights & Biases run, offline unless ``WANDB_MODE`` says otherwise; its files in ``RUN/wandb``."""

    def __init__(self, run_dir: Path, config, ids: dict, parent: dict, resumed_step: int):
        import wandb

        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or PROJECT, name=config.run_name(), group=parent.get("group"),
            dir=str(run_dir), mode=os.environ.get("WANDB_MODE") or "offline", config=hyperparameters(config),
            id=ids.get("wandb"), resume="allow" if ids.get("wandb") else None, reinit="create_new",
            settings=wandb.Settings(silent=True, console="off"))
        ids["wandb"] = self.run.id

    def log(self, step: int, values: dict) -> None:
        self.run.log(values, step=step)

    def finish(self, summary: dict, values: dict, run_dir: Path) -> None:
        self.run.summary.update({**values, "status": summary.get("status", "")})
        self.run.finish()

    def close(self, failed: bool) -> None:
        self.run.finish(exit_code=1 if failed else 0)


KINDS = {"tensorboard": TensorBoard, "mlflow": MLflow, "wandb": WandB}


class Trackers:
    """The trackers ``config.train.log`` names, for one run: `log` each metrics record, `finish` with the
    summary, or `close` when the run stops without one. An empty ``train.log`` makes every call a no-op.

    Args:
        config: the run's RunConfig.
        run_dir: its directory (tracker ids are kept in ``run_dir/trackers.json``).
        resumed_step: the checkpoint's step when the run resumes, else 0.
        baseline: the task's memoryless baseline on the validation set, {metric: value}, drawn as a constant.
    """

    def __init__(self, config, run_dir: Path, resumed_step: int = 0, baseline: dict | None = None):
        self.run_dir = Path(run_dir)
        self.baseline = {f"baseline/{k}": float(v) for k, v in (baseline or {}).items() if _number(v)}
        self.active: dict = {}
        names = parse(config.train.log)
        if not names:
            return
        ids = _read_ids(self.run_dir / FILE)
        parent = _read_ids(Path(config.out) / FILE).get("parent", {})
        for name in names:
            tracker = self._call(name, KINDS[name], self.run_dir, config, ids, parent, resumed_step)
            if tracker is not None:
                self.active[name] = tracker
        write_json(self.run_dir / FILE, ids)

    def _call(self, name: str, action, *args):
        """``action(*args)``; a tracker that raises is named in one line on stderr and dropped (the run goes
        on: metrics.jsonl has every record)."""
        try:
            with bounded_waits():
                return action(*args)
        except Exception as e:  # a tracker's failure, whatever its library raises, never ends the run
            self.active.pop(name, None)
            print(f"longrnn: --log {name} stopped ({_first_line(e)}); the run goes on, and metrics.jsonl keeps "
                  f"every record", file=sys.stderr)

    def log(self, record: dict) -> None:
        """One metrics.jsonl record (an evaluation, or a step-0 VAA record) at its step."""
        values = scalars(record)
        if "phase" not in record:
            values.update(self.baseline)
        for name, tracker in list(self.active.items()):
            self._call(name, tracker.log, record["step"], values)

    def finish(self, summary: dict) -> None:
        """The summary (its `summary_scalars` and status); closes every tracker."""
        values = summary_scalars(summary)
        for name, tracker in list(self.active.items()):
            self._call(name, tracker.finish, summary, values, self.run_dir)
        self.active = {}

    def close(self, failed: bool = True) -> None:
        """End the trackers of a run that stopped without a summary (an error, or an interruption)."""
        for tracker in self.active.values():
            with contextlib.suppress(Exception), bounded_waits():
                tracker.close(failed)
        self.active = {}


def open_sweep(out: Path, name: str, names: list[str]) -> None:
    """A sweep's own tracker entries, which its runs join as children: an MLflow parent run named ``name``
    (reused when the sweep runs again) and the W&B group ``name``, kept in ``out/trackers.json``."""
    if names:
        try:
            with bounded_waits():
                _open_sweep(out, name, names)
        except Exception as e:  # as in a run: a tracker's failure never stops the work
            print(f"longrnn: the sweep's tracker entries were not made ({_first_line(e)}); its runs log without a "
                  f"parent", file=sys.stderr)


def _open_sweep(out: Path, name: str, names: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ids = _read_ids(out / FILE)
    parent = ids.get("parent", {})
    if "wandb" in names:
        parent["group"] = name
    if "mlflow" in names:
        client, experiment = mlflow_client(out)
        if parent.get("mlflow"):
            client.update_run(parent["mlflow"], status="RUNNING")
        else:
            parent["mlflow"] = client.create_run(experiment, run_name=name, tags={"longrnn.sweep": name}).info.run_id
    write_json(out / FILE, {**ids, "parent": parent})


def close_sweep(out: Path) -> None:
    """Mark the sweep's MLflow run finished (its runs have ended; running the sweep again reopens it)."""
    parent = _read_ids(out / FILE).get("parent", {})
    if parent.get("mlflow"):
        with contextlib.suppress(Exception), bounded_waits():
            client, _ = mlflow_client(out)
            client.set_terminated(parent["mlflow"], "FINISHED")
