"""Reading sequence datasets into one form (`SequenceData`): ``.npz``, ``.csv`` (long format), ``.ts`` and
``aeon:NAME`` (through aeon, the extra ``[ts]``). The layouts are in `longrnn.tasks.sequences`.

Every reader refuses, in one line naming the file and what is wrong: a missing file or array, ragged
sequences without lengths, a non-finite input (naming the sequence and step), a sequence without steps,
targets that do not match the sequences, and a split value other than train / validation / test.
"""

from __future__ import annotations

import csv
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from longrnn.errors import UsageError, require_extra

SPLIT_NAMES = ("train", "validation", "test")
AEON_PREFIX = "aeon:"


@dataclass
class SequenceData:
    """N sequences as float64 arrays (T_i, F), their targets (N,) or (N, C), an optional split (N,) of
    "train" / "validation" / "test", where they came from and a fingerprint of the source (SHA-256)."""

    x: list[np.ndarray]
    y: np.ndarray
    split: np.ndarray | None
    source: str
    fingerprint: str


def read_sequences(data: str, id_column: str = "id", time_column: str = "time", target_column: str = "y",
                   allow_pickle: bool = False, missing_inputs: bool = False,
                   step_targets: bool = False) -> SequenceData:
    """The dataset ``data`` names: a file path (.npz, .csv, .ts) or ``aeon:NAME``. ``allow_pickle``: read
    an .npz whose x is an object array (numpy stores those pickled, and unpickling runs code: only for
    files you made). ``missing_inputs``: NaN inputs are kept (to be filled), not refused.
    ``step_targets``: a .csv's target column is one target per step (padded into (N, T) whole numbers
    with -100, or (N, T, 1) values with NaN), not one per sequence."""
    if not isinstance(data, str) or not data.strip():
        raise UsageError(f"--data must name a file (.npz, .csv, .ts) or aeon:NAME, got {data!r}")
    if data.startswith(AEON_PREFIX):
        found = _read_aeon(data[len(AEON_PREFIX):])
    else:
        path = data_file(data)
        readers = {".npz": lambda p: _read_npz(p, allow_pickle),
                   ".csv": lambda p: _read_csv(p, id_column, time_column, target_column, step_targets),
                   ".ts": _read_ts}
        if path.suffix.lower() not in readers:
            raise UsageError(f"--data {data!r}: unknown kind of file {path.suffix!r}; allowed: .npz, .csv, .ts, "
                             "or aeon:NAME")
        if step_targets and path.suffix.lower() != ".csv":
            raise UsageError("step_targets reads a .csv's target column per step; an .npz gives per-step targets "
                             "by its y's shape, (N, T) or (N, T, C)")
        found = readers[path.suffix.lower()](path)
    _check(found, missing_inputs)
    return found


def data_file(data: str) -> Path:
    """``--data`` as the path of an existing file; a missing path or a folder is a UsageError."""
    path = Path(data)
    if not path.is_file():
        raise UsageError(f"--data {data!r}: no such file" if not path.exists() else f"--data {data!r} is not a file")
    return path


def aeon_data_folder() -> Path:
    """The folder of the data sets shipped inside aeon (the extra ``[ts]``)."""
    return Path(require_extra("aeon.datasets", "ts").__file__).parent / "data"


# --- .npz ----------------------------------------------------------------------------------------
def _read_npz(path: Path, allow_pickle: bool) -> SequenceData:
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path}: not a readable .npz file (not a zip archive of arrays)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise UsageError(f"{path}: not a readable .npz file ({e})") from None
        if not allow_pickle:
            raise UsageError(f"{path} holds an object array (ragged sequences, stored pickled; unpickling runs "
                             "code): save x padded to (N, T, F) with lengths, or, for a file you made, set "
                             "task.options.allow_pickle=true") from None
        arrays = _read_npz_objects(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise UsageError(f"{path}: not a readable .npz file ({e})") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise UsageError(f"{path} has no array {key!r} (it has {', '.join(sorted(arrays)) or 'none'}); it needs x "
                             "(sequences) and y (targets)")
    x, lengths = arrays["x"], arrays.get("lengths")
    if x.dtype != object and not _real(x.dtype):
        raise UsageError(f"{path}: x must hold real numbers, got {x.dtype}")
    if x.dtype == object:
        xs = [np.asarray(s, dtype=np.float64) for s in x]
        xs = [s[:, None] if s.ndim == 1 else s for s in xs]
    elif x.ndim in (2, 3):
        x = x.astype(np.float64)[..., None] if x.ndim == 2 else x.astype(np.float64)
        xs = list(x)
    else:
        raise UsageError(f"{path}: x must be (N, T, F), (N, T) or an object array of (T_i, F) arrays, got shape "
                         f"{x.shape}")
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (len(xs),) or not np.issubdtype(lengths.dtype, np.integer):
            raise UsageError(f"{path}: lengths must be {len(xs)} whole numbers, got shape {lengths.shape} of "
                             f"{lengths.dtype}")
        for i, (s, n) in enumerate(zip(xs, lengths)):
            if not 1 <= n <= len(s):
                raise UsageError(f"{path}: sequence {i} has length {int(n)}; lengths must be in 1..{len(s)}")
        xs = [s[: int(n)] for s, n in zip(xs, lengths)]
    split = arrays.get("split")
    if split is not None and split.shape != (len(xs),):
        raise UsageError(f"{path}: split must give one part per sequence, shape ({len(xs)},), got {split.shape}")
    y = np.asarray(arrays["y"])
    if y.dtype == object or np.issubdtype(y.dtype, np.complexfloating):
        raise UsageError(f"{path}: y must hold numbers or text labels, got {y.dtype}")
    split = None if split is None else split.astype(str).astype(object)
    return SequenceData(xs, y, split, str(path), file_sha256(path))


def _real(dtype) -> bool:
    """Real numbers (or booleans): not text, not complex, not objects."""
    return np.issubdtype(dtype, np.bool_) or (np.issubdtype(dtype, np.number)
                                              and not np.issubdtype(dtype, np.complexfloating))


def _read_npz_objects(path: Path) -> dict:
    """An .npz whose x is an object array (ragged sequences), which numpy stores pickled: the one place
    longrnn unpickles anything, only when asked (``allow_pickle``); only arrays of numbers are kept."""
    with np.load(path, allow_pickle=True) as f:
        arrays = {k: f[k] for k in f.files}
    x = arrays.get("x")
    if x is not None and x.dtype == object:
        for i, s in enumerate(x):
            if not isinstance(s, np.ndarray) or not _real(s.dtype):
                raise UsageError(f"{path}: x[{i}] is a {type(s).__name__}, not an array of numbers")
    return arrays


# --- .csv ----------------------------------------------------------------------------------------
def _read_csv(path: Path, id_column: str, time_column: str, target_column: str,
              step_targets: bool = False) -> SequenceData:
    header, lines = read_csv_rows(path)
    for role, name in (("id_column", id_column), ("time_column", time_column), ("target_column", target_column)):
        if name not in header:
            raise UsageError(f"{path} has no column {name!r} ({role}); its columns: {', '.join(header)}")
    features = [c for c in header if c not in (id_column, time_column, target_column, "split")]
    if not features:
        raise UsageError(f"{path} has no feature columns besides {id_column}, {time_column} and {target_column}")
    column = {name: i for i, name in enumerate(header)}
    rows: dict[str, list] = {}
    for line, row in lines:
        values = [number(row[column[c]], path, line, c) for c in features]
        for name in (id_column, time_column, target_column):
            if not row[column[name]].strip():
                raise UsageError(f"{path}, line {line}: column {name!r} is empty; every row needs its sequence id, "
                                 "time and target (only feature cells may be missing)")
        step = number(row[column[time_column]], path, line, time_column)
        split = row[column["split"]] if "split" in column else None
        rows.setdefault(row[column[id_column]], []).append((step, values, row[column[target_column]], split))
    if not rows:
        raise UsageError(f"{path} has no rows")
    xs, ys, splits = [], [], []
    for key, steps in rows.items():
        steps.sort(key=lambda r: r[0])
        checks = [("split parts", {r[3] for r in steps})]
        if not step_targets:
            checks.append(("targets", {r[2] for r in steps}))
        for what, values in checks:
            if len(values) != 1:
                raise UsageError(f"{path}: sequence {key!r} has {len(values)} different {what}; one per sequence")
        times = [r[0] for r in steps]
        if len(set(times)) != len(times):
            raise UsageError(f"{path}: sequence {key!r} has two rows at one {time_column!r}; one row per step")
        xs.append(np.array([r[1] for r in steps], dtype=np.float64))
        ys.append([r[2] for r in steps] if step_targets else steps[0][2])
        splits.append(steps[0][3])
    split = np.array(splits, dtype=object) if "split" in column else None
    y = _padded_step_targets(ys, path) if step_targets else _labels_or_numbers(ys)
    return SequenceData(xs, y, split, str(path), file_sha256(path))


def _padded_step_targets(ys: list[list[str]], path: Path) -> np.ndarray:
    """Per-step target cells as (N, T) whole numbers padded with -100, or (N, T, 1) values padded with NaN."""
    values = _labels_or_numbers([v for y in ys for v in y])
    if not np.issubdtype(values.dtype, np.number):
        raise UsageError(f"{path}: per-step targets must be numbers (whole numbers for classes, -100 for none; "
                         f"values with a point, nan for none), got text such as {values[0]!r}")
    integral = np.issubdtype(values.dtype, np.integer)
    out = np.full((len(ys), max(map(len, ys))), -100 if integral else np.nan, dtype=values.dtype)
    at = 0
    for i, y in enumerate(ys):
        out[i, : len(y)] = values[at : at + len(y)]
        at += len(y)
    return out if integral else out[..., None]


def read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (line number, cells) of every row of a CSV file; a byte-order mark is dropped
    (spreadsheets write one); a row with another number of cells than the header, text that is not UTF-8
    or a file that cannot be read is a UsageError naming the file (and line)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            table = list(csv.reader(f))
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise UsageError(f"{path} cannot be read ({e.strerror})") from None
    if not table:
        raise UsageError(f"{path} is empty")
    header, lines = table[0], []
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise UsageError(f"{path}: the header names column {repeated[0]!r} more than once; name each column once")
    for line, row in enumerate(table[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise UsageError(f"{path}, line {line}: {len(row)} cells for {len(header)} columns")
        lines.append((line, row))
    return header, lines


def number(text: str, path: Path, line: int, column: str) -> float:
    """A CSV cell as a number; an empty cell is a missing value (NaN, refused or filled by the caller)."""
    if not text.strip():
        return float("nan")
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{path}, line {line}: column {column!r} holds {text[:20]!r}, not a number") from None


def _labels_or_numbers(values: list[str]) -> np.ndarray:
    """CSV targets: whole numbers written as such ("3") are class labels, numbers with a point or an
    exponent ("3.0", "1e-2") real values, anything else text labels."""
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        pass
    try:
        return np.array([float(v) for v in values])
    except ValueError:
        return np.array(values, dtype=str)


# --- aeon ----------------------------------------------------------------------------------------
def _read_ts(path: Path) -> SequenceData:
    datasets = require_extra("aeon.datasets", "ts")
    try:
        x, y = datasets.load_from_ts_file(str(path))
    except Exception as e:  # noqa: BLE001 - aeon's parser raises many kinds; the user needs the line, not the type
        raise UsageError(f"{path}: not a readable .ts file ({str(e).splitlines()[0][:160]})") from None
    return SequenceData(_channels_last(x), np.asarray(y), None, str(path), file_sha256(path))


def _read_aeon(name: str) -> SequenceData:
    """An archive shipped inside aeon (classification or regression), with its own train/test split (no
    network)."""
    datasets = require_extra("aeon.datasets", "ts")
    shipped = aeon_data_folder()
    available = sorted(p.name for p in shipped.iterdir() if p.is_dir() and (p / f"{p.name}_TRAIN.ts").exists())
    if name not in available:
        raise UsageError(f"aeon ships no archive {name!r} with a train/test split; allowed: {', '.join(available)}")
    xs, ys, splits, digest = [], [], [], hashlib.sha256()
    for split, suffix in (("train", "TRAIN"), ("test", "TEST")):
        path = shipped / name / f"{name}_{suffix}.ts"
        x, y = datasets.load_from_ts_file(str(path))
        xs += _channels_last(x)
        ys += list(y)
        splits += [split] * len(y)
        digest.update(bytes.fromhex(file_sha256(path)))
    return SequenceData(xs, np.asarray(ys), np.array(splits, dtype=object), f"aeon:{name}", digest.hexdigest())


def _channels_last(x) -> list[np.ndarray]:
    """aeon's (N, channels, T) array or list of (channels, T_i) arrays as (T_i, channels) arrays."""
    return [np.asarray(s, dtype=np.float64).T for s in x]


# --- checks --------------------------------------------------------------------------------------
def _check(found: SequenceData, missing_inputs: bool = False) -> None:
    n, where = len(found.x), found.source
    if n == 0:
        raise UsageError(f"{where} holds no sequences")
    features = found.x[0].shape[1] if found.x[0].ndim == 2 else None
    for i, s in enumerate(found.x):
        if s.ndim != 2 or s.shape[1] != features:
            raise UsageError(f"{where}: sequence {i} has shape {s.shape}; every sequence must be (T_i, {features})")
        if len(s) == 0:
            raise UsageError(f"{where}: sequence {i} has no steps")
        bad = np.argwhere(np.isinf(s) if missing_inputs else ~np.isfinite(s))
        if len(bad):
            step, feature = bad[0]
            advice = "" if missing_inputs else (" (NaN padding after a sequence's end? save its lengths; missing "
                                                "values? set task.options.nan to mean or previous)")
            raise UsageError(f"{where}: sequence {i} has a non-finite input ({s[step, feature]}) at step {step}, "
                             f"feature {feature}; fill or drop it first{advice}")
    if len(found.y) != n:
        raise UsageError(f"{where}: {len(found.y)} targets for {n} sequences; give one target per sequence")
    if np.issubdtype(found.y.dtype, np.floating):  # NaN marks a step without target in per-step targets
        bad = np.isinf(found.y) if found.y.ndim == 3 else ~np.isfinite(found.y)
        if bad.any():
            raise UsageError(f"{where}: target {int(np.argwhere(bad)[0][0])} is not finite"
                             + (" (NaN marks a step without target; infinities are refused)" if found.y.ndim == 3
                                else ""))
    if found.split is not None:
        unknown = sorted(set(found.split.tolist()) - set(SPLIT_NAMES))
        if unknown:
            raise UsageError(f"{where}: split values {unknown[:5]} are not train, validation or test")


def pad(arrays: list[np.ndarray], fill: float = 0.0,
        dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Arrays (T_i, F) as one tensor (N, T_max, F) of ``dtype``, ``fill`` after each one's end, and their
    lengths (N,) (long)."""
    lengths = torch.tensor([len(a) for a in arrays], dtype=torch.long)
    out = torch.full((len(arrays), int(lengths.max()), arrays[0].shape[1]), fill, dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = torch.as_tensor(a, dtype=dtype)
    return out, lengths


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex (what data.json records of a user's data)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
