"""Run directories: the only thing reports and sweeps read.

    RUN/config.toml     the full RunConfig
    RUN/metrics.jsonl   one JSON object per logged step (train loss, validation metrics, lr, gradient norm,
                        time, peak memory)
    RUN/summary.json    final status, best validation and test metrics, baseline, wall time, memory, versions
    RUN/model.pt        the best-on-validation weights (a plain state_dict, loads with weights_only=True)
    RUN/checkpoint.pt   the full training state of the last evaluation, for --resume
    RUN/warmup.json     with --warmup: its history (loss, VAA* per layer, stabilisation length, time per step)
    RUN/trackers.json   with --log: the ids of the run in MLflow and W&B, so a resumed run continues them
    RUN/tensorboard/, RUN/wandb/   with --log: TensorBoard's event files, W&B's offline run files
    RUN/.lock           held (flock) by the one process writing the run; the operating system frees it
                        when that process ends, however it ends

Every whole-file write goes to a temporary file (``.NAME.XXXX.tmp``) that is then renamed over the
target, so a crash never leaves a half-written file; the next writer removes what a killed one left.
Metrics lines are flushed as they are written. Files get the permissions the user's umask gives any new
file (0644 under the usual 022: a shared results folder stays readable by colleagues), not the 0600 of a
temporary file.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
import warnings
from pathlib import Path

import torch

from longrnn.errors import LongrnnDeprecationWarning, UsageError
from longrnn.runs.config import RunConfig, check_options, check_ranges, load

CONFIG, METRICS, SUMMARY, MODEL, CHECKPOINT, WARMUP, LOCK = (
    "config.toml",
    "metrics.jsonl",
    "summary.json",
    "model.pt",
    "checkpoint.pt",
    "warmup.json",
    ".lock",
)
TEMPORARY = ".*.tmp"  # a whole-file write in progress (`_atomic`)


def _atomic(path: Path, write) -> None:
    """Write ``path`` whole or not at all: into a temporary file beside it, then renamed over it. A place
    that cannot be written is an OSError naming ``path`` itself (not the temporary file)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory (a file's path is needed)", str(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(path)) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # as open() would create it; mkstemp makes 0600
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask: read from /proc on Linux; elsewhere set and set straight back (os.umask is the
    only reader there)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader sees the old file or the new one, never half)."""
    _atomic(path, lambda f: f.write(text.encode()))


def write_json(path: Path, obj) -> None:
    """``obj`` as indented, key-sorted JSON at ``path``, atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_torch(path: Path, obj) -> None:
    """``torch.save(obj)`` to ``path``, atomically."""
    _atomic(path, lambda f: torch.save(obj, f))


def append_metrics(run_dir: Path, record: dict) -> None:
    """Append one evaluation's record as a line of the run's metrics.jsonl, flushed."""
    with open(Path(run_dir) / METRICS, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


class DamagedFile(UsageError):
    """A file of a run directory that exists but cannot be read; the message names it and what to do."""


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of ``metrics.jsonl``. Only its last line may be cut short (a crash while appending; that
    record is redone on resume) and is left out; any other line that is not a JSON object is a
    `DamagedFile` naming the line: a log is never silently cut to fit."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    text = path.read_text(errors="replace")
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # the last line, without its newline: cut short by a crash
                break
            record = None
        if not isinstance(record, dict):
            raise DamagedFile(f"{path} is damaged at line {number} of {len(lines) - 1}: not a JSON record; "
                              "restore it from a copy, or delete the run directory and train it again")
        records.append(record)
    return records


def truncate_metrics(run_dir: Path, last_step: int) -> None:
    """Keep only records up to ``last_step`` (used on resume: later ones are redone)."""
    kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= last_step]
    write_text(Path(run_dir) / METRICS, "".join(json.dumps(r) + "\n" for r in kept))


SUMMARY_FIELDS = {"status": str, "main_metric": str, "validation": (dict, type(None)), "test": (dict, type(None)),
                  "baseline": dict, "steps": int, "wall_time_s": (int, float),
                  "higher_is_better": bool, "seed": int}  # what reports and resumes read
STATUSES = ("finished", "solved", "diverged")
REWRITE_SUMMARY = "delete it, and `longrnn train ... --resume` writes it again from the run's checkpoint.pt"


def read_json(path: Path, advice: str) -> dict:
    """A JSON object file of the run; unreadable or not an object, a `DamagedFile` naming it and ``advice``."""
    try:
        found = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        found = None
    if not isinstance(found, dict):
        raise DamagedFile(f"{path} is damaged (not a JSON object); {advice}")
    return found


def read_summary(run_dir: Path) -> dict | None:
    """``summary.json`` (None while the run has not finished); unreadable, it is a `DamagedFile`."""
    path = Path(run_dir) / SUMMARY
    if not path.exists():
        return None
    summary = read_json(path, REWRITE_SUMMARY)
    for key, kinds in SUMMARY_FIELDS.items():
        if not isinstance(summary.get(key), kinds) or kinds is int and isinstance(summary.get(key), bool):
            raise DamagedFile(f"{path} is damaged ({key!r} is {summary.get(key)!r}); {REWRITE_SUMMARY}")
    if summary["status"] not in STATUSES:
        raise DamagedFile(f"{path} is damaged (status {summary['status']!r} is none of {', '.join(STATUSES)}); "
                          f"{REWRITE_SUMMARY}")
    for split in ("validation", "test", "baseline"):
        for name, value in (summary[split] or {}).items():
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                raise DamagedFile(f"{path} is damaged ({split} {name!r} is {value!r}, not a number); "
                                  f"{REWRITE_SUMMARY}")
    return summary


def load_torch(path: Path, advice: str):
    """A tensor file of the run (``model.pt``, ``checkpoint.pt``) loaded with ``weights_only=True``; a
    missing or damaged one is a `DamagedFile` naming it and ``advice`` (never "retry with
    weights_only=False": these files hold tensors only, and unpickling anything else is unsafe)."""
    path = Path(path)
    if not path.is_file():
        raise DamagedFile(f"{path} {'is not a file' if path.exists() else 'does not exist'}; {advice}")
    try:
        with warnings.catch_warnings():  # torch's own remarks on the pickle inside are not the user's concern
            warnings.simplefilter("ignore")
            return torch.load(path, weights_only=True, map_location="cpu")
    except Exception:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for a damaged file
        raise DamagedFile(f"{path} is damaged or is not a file of tensors that torch.save wrote; {advice}") from None


def read_config(run_dir: Path) -> RunConfig:
    """The run's config, checked as ``train`` checks one (types, ranges, task and cell names and options):
    a value no run could have been trained with is a `DamagedFile` naming the file. A run written by an
    older release may hold keys renamed since (`longrnn.runs.config.RENAMED`): they are read as the new
    keys, silently (the file is not the user's to change)."""
    path = Path(run_dir) / CONFIG
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LongrnnDeprecationWarning)
        try:
            config = load(path)
            if not all(f"[{section}]" in path.read_text(errors="replace") for section in ("task", "model", "train")):
                raise UsageError("it lacks a [task], [model] or [train] table, which every run writes")
            check_ranges(config)
            check_options(config)
        except DamagedFile:
            raise
        except UsageError as e:
            raise DamagedFile(f"{path} is damaged: {e}; restore it from a copy, or delete the run directory "
                              "and train it again") from None
    return config


def is_run(path: Path) -> bool:
    """Whether ``path`` is a run directory (it holds a config.toml)."""
    return (Path(path) / CONFIG).is_file()


def find_runs(paths) -> list[Path]:
    """Run directories given directly or found below the given folders, sorted."""
    found = set()
    for p in map(Path, paths):
        if not p.exists():
            raise UsageError(f"{str(p)!r} does not exist")
        if is_run(p):
            found.add(p)
        else:
            found.update(c.parent for c in p.rglob(CONFIG))
    if not found:
        raise UsageError(f"no run directories (folders holding {CONFIG}) under {', '.join(map(str, paths))}")
    return sorted(found)


def has_trained(run_dir: Path) -> bool:
    """Whether a run directory holds anything training produced (a checkpoint, weights or a summary). One
    that does not (a run stopped before its first evaluation) holds nothing to lose: it is started anew."""
    return any((Path(run_dir) / name).exists() for name in (CHECKPOINT, MODEL, SUMMARY))


def prepare(config: RunConfig, resume: bool) -> Path:
    """Create (or, with ``resume``, reopen) the run directory for ``config``. A directory with trained
    state needs ``resume`` and the same config; ``resume`` needs a run to continue (its config.toml).

    Raises:
        UsageError: for a bad --out or --name, a finished or half-trained run without ``resume``, nothing to
            resume, a different config under ``resume``, or a place the directory cannot be made.
    """
    name = config.run_name()
    if not config.out.strip() or name in (".", "..") or "/" in name or "\\" in name or not name.strip():
        raise UsageError(f"--out must name a folder and --name a single folder inside it, got out={config.out!r} "
                         f"and name={config.name!r}")
    run_dir = Path(config.out) / name
    if resume and not (run_dir / CONFIG).is_file():
        raise UsageError(f"nothing to resume: {str(run_dir)!r} holds no run ({CONFIG}); leave out --resume to "
                         "start it, or give the --out, --name and flags of the run to continue")
    if not has_trained(run_dir):
        resume = False  # nothing trained to keep or to match: the run starts from its first step
    elif not resume:
        raise UsageError(
            f"run directory {str(run_dir)!r} already exists; pass --resume to continue it, "
            "or --name to write a new one"
        )
    if resume:
        saved = read_config(run_dir)
        if (saved.identity(), saved.train.seed) != (config.identity(), config.train.seed):
            raise UsageError(
                f"run directory {str(run_dir)!r} holds a different config (see its {CONFIG}); "
                "resume with the same settings, or pass --name to start a new run"
            )
    return make_folder(run_dir, "--out", "the run directory")


def make_folder(path: str | Path, flag: str, what: str = "the folder") -> Path:
    """Make the folder ``path`` (and its parents) and check it can be written, before any work is done:
    a file where the folder should be, a read-only or unreachable place is a UsageError naming ``flag``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {str(path)!r} is a file; give {flag} a folder (new or existing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file where a folder should be, a read-only or unreachable place
        raise UsageError(f"cannot make {what} {str(path)!r}: {e.strerror} ({e.filename}); give {flag} a folder "
                         "you can write") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in {what} {str(path)!r} (read-only); give {flag} a folder you can write")
    return path


class RunLock:
    """The run directory's one writer: an exclusive, non-blocking ``flock`` on ``RUN/.lock``, holding the
    writer's process id and host. A second writer gets a UsageError naming the holder. Taking the lock
    removes the temporary files a killed writer left (`TEMPORARY`): nobody else can be writing them."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        try:
            self.file = open(self.path, "a+")  # held open until `release`: the lock lives as long as the file
        except OSError as e:
            raise UsageError(f"cannot write in the run directory {str(run_dir)!r}: {e.strerror}") from None
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise UsageError(f"run directory {str(run_dir)!r} is being written by {holder}; wait for it to end "
                             "or stop it (a run directory has one writer)") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        self.file.flush()
        for orphan in Path(run_dir).glob(TEMPORARY):
            orphan.unlink(missing_ok=True)

    def release(self) -> None:
        """Give the run directory up (idempotent); ending the process does the same."""
        if not self.file.closed:
            self.file.truncate(0)
            self.file.close()  # closing the file releases the flock

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
