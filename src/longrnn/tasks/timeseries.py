"""Your own recording for dynamical-systems reconstruction (``longrnn train --task timeseries --data FILE``).

The data: a multivariate series of T samples of N variables, one trial or several —

* ``.npy``: a (T, N) or (T,) array, or (K, T, N) for K trials of equal length;
* ``.npz``: the same as its array ``x`` (and optional ``variables``, their names);
* ``.csv``: one row per sample, one column per variable (header: their names); the columns named by
  ``drop`` (e.g. a time stamp or a label) are left out; text columns are refused;
* a folder: every .npy, .npz and .csv file in it, in the order of their names, each one trial or more
  (a session per file, say); trials may differ in length, and the files must hold the same variables;
* ``aeon:Daphnet_S06R02E0``: the accelerometer recording shipped inside aeon (the extra ``[ts]``): 9
  channels, sampled every 15.6 ms (64 Hz), of a Daphnet freezing-of-gait session; its anomaly label is
  dropped.

``inputs`` names variables that are external inputs s_t of a driven system (a stimulus, a control): the
model reads them beside the observations at every step, teacher-forced or free, and never predicts them
(`longrnn.dsr.rollout`); the observations x_t are the other variables. ``longrnn dsr eval`` then runs the
model freely along the test trial's recorded inputs and compares it with the rest of that trial (no
transient is dropped: the inputs, not the start, set the path).

The parts are never interleaved: with one trial (or ``split="time"``) contiguous blocks in time, the
first ``1 − validation_fraction − test_fraction`` for training, then validation, then test; with
``split="trials"`` whole trials (the last ones for validation and test). The series is standardised
with the training part's mean and standard deviation alone. Then it is a dynamical-systems task as
`longrnn.tasks.dynamical` describes: windows of ``seq_len + 1`` samples, the next sample as target,
``--trainer teacher_forcing`` (or bptt), the persistence baseline x̂ₜ₊₁ = xₜ; the validation and test
windows are spread over every held-out trial, and ``longrnn dsr eval`` scores free generation against
the first test trial's block (D_stsp, D_H, PE(n)). ``dt`` (seconds per sample) labels
the pictures' time axis. Non-finite samples are refused, naming the sample and variable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from longrnn.dsr.data import DSRData, Standardizer
from longrnn.errors import UsageError, check_choice, check_positive
from longrnn.tasks.dynamical import DynamicalSystemTask
from longrnn.tasks.registry import register
from longrnn.tasks.sequence_files import aeon_data_folder, data_file, file_sha256, number, pad, read_csv_rows

SPLITS = ("time", "trials")
AEON_RECORDINGS = {"Daphnet_S06R02E0": ("S06R02E0.csv", ("timestamp", "is_anomaly"), 1 / 64)}


@register("timeseries", "next-step prediction of your own recording (--data FILE: .npy, .npz, .csv, or a folder "
                        "of them) for reconstruction")
class TimeSeries(DynamicalSystemTask):
    system = "timeseries"

    def __init__(
        self,
        data: str | None = None,
        seq_len: int = 200,
        split: str = "time",
        validation_fraction: float = 0.2,
        test_fraction: float = 0.2,
        dt: float = 1.0,
        drop: list | None = None,
        inputs: list | None = None,
        validation_size: int = 64,
        test_size: int = 64,
    ):
        if data is None:
            raise UsageError("task 'timeseries' needs its data: --data FILE (.npy, .npz, .csv), a folder of them, or "
                             f"aeon:{', aeon:'.join(AEON_RECORDINGS)}")
        check_choice("split", split, SPLITS)
        for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
                raise UsageError(f"{name} must be in (0, 1), got {value!r}")
        if validation_fraction + test_fraction >= 1:
            raise UsageError(f"validation_fraction + test_fraction must leave a training part, got "
                             f"{validation_fraction} + {test_fraction}")
        if not isinstance(dt, (int, float)) or isinstance(dt, bool) or not (np.isfinite(dt) and dt > 0):
            raise UsageError(f"dt must be a positive number of seconds per sample, got {dt!r}")
        self.seq_len = check_positive("seq_len", seq_len)
        check_positive("validation_size", validation_size)
        check_positive("test_size", test_size)
        super(DynamicalSystemTask, self).__init__(validation_size=validation_size, test_size=test_size)
        drop, inputs = _names("drop", drop), _names("inputs", inputs)
        trials, variables, dt, self.fingerprint = read_series(data, drop, dt)
        trials, variables, self.external_inputs = _inputs_last(trials, variables, inputs, data)
        train, validation, test = _parts(trials, split, validation_fraction, test_fraction, data)
        standardizer = Standardizer.fit(np.concatenate(train))
        if not np.all(standardizer.std > 0):
            flat = [variables[i] for i in np.flatnonzero(~(standardizer.std > 0))]
            raise UsageError(f"{data}: variables {flat[:5]} are constant over the training part; drop them")
        (train, self._train_lengths), (self._validation, self._validation_lengths), (self._test, self._test_lengths) = (
            pad([standardizer.transform(t) for t in part], float("nan"), torch.float32)  # NaN after each end
            for part in (train, validation, test))
        self.input_names = variables[len(variables) - self.external_inputs :]
        self.data = DSRData("timeseries", tuple(variables[: len(variables) - self.external_inputs]), dt, train,
                            self._test, standardizer)
        self.source = data
        shortest = int(min(self._train_lengths.min(), self._validation_lengths.min(), self._test_lengths.min()))
        if shortest <= seq_len:
            raise UsageError(f"seq_len must be below the shortest part's length {shortest} (samples), got {seq_len}")
        self.input_size = self.data.train.shape[-1]
        self.output_size = self.input_size - self.external_inputs

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Training windows, every (trial, start) equally likely; trials of one length draw as the other
        next-step tasks do."""
        if bool((self._train_lengths == self._train_lengths[0]).all()):
            return super().sample(batch_size, generator)
        starts = self._train_lengths - self.seq_len  # each trial's number of window starts
        pick = torch.randint(0, int(starts.sum()), (batch_size,), generator=generator)
        which = torch.searchsorted(starts.cumsum(0), pick, right=True)
        return self._windows(self.data.train, (which, pick - (starts.cumsum(0) - starts)[which]))

    @property
    def validation_trajectory(self) -> torch.Tensor:
        """(length, N): the first held-out validation trial (its block); the validation set's windows
        come from every one."""
        return self._validation[0, : self._validation_lengths[0], : self.output_size]

    @property
    def test_trajectory(self) -> torch.Tensor:
        """(length, N): the first test trial, whose free generation `longrnn dsr eval` scores; the test
        set's one-step windows come from every test trial."""
        return self._test[0, : self._test_lengths[0], : self.output_size]

    @property
    def test_inputs(self) -> torch.Tensor | None:
        """(length, K): the external inputs along `test_trajectory`; None without them."""
        return self._test[0, : self._test_lengths[0], self.output_size :] if self.external_inputs else None

    def _evenly_spaced_in_all(self, trials: torch.Tensor, lengths: torch.Tensor, size: int):
        """``size`` windows spread evenly over every trial of ``trials`` (K, T, N; each as long as
        ``lengths`` says), in trial order."""
        counts = [size // len(trials) + (k < size % len(trials)) for k in range(len(trials))]
        parts = [self._evenly_spaced(trial[:length], n) for trial, length, n in zip(trials, lengths, counts) if n]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def validation_set(self):
        if "validation" not in self._cache:
            self._cache["validation"] = self._evenly_spaced_in_all(self._validation, self._validation_lengths,
                                                                   self.validation_size)
        return self._cache["validation"]

    def test_set(self):
        if "test" not in self._cache:
            self._cache["test"] = self._evenly_spaced_in_all(self._test, self._test_lengths, self.test_size)
        return self._cache["test"]

    def describe(self) -> dict:
        """What a run directory records of its data (``data.json``), as task ``sequences`` does."""
        parts = (("train", self._train_lengths), ("validation", self._validation_lengths), ("test", self._test_lengths))
        lengths = {name: {"trials": len(part), "samples": int(part[0]) if bool((part == part[0]).all()) else
                          part.tolist()} for name, part in parts}
        return {"data": self.source, "sha256": self.fingerprint, "variables": list(self.data.variables),
                "inputs": list(self.input_names), "dt": self.data.dt, "split": lengths}

    def __repr__(self) -> str:
        return (f"TimeSeries(data={self.source!r}, seq_len={self.seq_len}, variables {len(self.data.variables)}, "
                f"train {int(self._train_lengths.sum())} samples)")


def _names(option: str, value) -> list[str]:
    """An option naming variables (``drop``, ``inputs``): one name or a list of names."""
    if value is None:
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n for n in names):
        raise UsageError(f"{option} must name variables: a name or a list of names, got {value!r}")
    return list(names)


def _inputs_last(trials: list, variables: list[str], inputs: list[str], data: str) -> tuple[list, list[str], int]:
    """The trials with the variables named by ``inputs`` (external inputs: given to the model, never
    predicted) moved after the observed ones; their count K."""
    unknown = [name for name in inputs if name not in variables]
    if unknown:
        raise UsageError(f"{data} has no variable {unknown[0]!r} to take as an external input; its variables: "
                         f"{', '.join(variables)}")
    if len(set(inputs)) != len(inputs):
        raise UsageError(f"inputs names a variable twice: {inputs}")
    observed = [v for v in variables if v not in inputs]
    if not observed:
        raise UsageError(f"{data}: every variable is an external input; keep at least one to reconstruct")
    order = [variables.index(v) for v in observed + inputs]
    return [trial[:, order] for trial in trials], observed + inputs, len(inputs)


def read_series(data: str, drop: list, dt: float) -> tuple[list[np.ndarray], list[str], float, str]:
    """(trials, each (T_k, N) float64, variable names, dt, SHA-256 of the source) of ``data``: a file, a
    folder of them (one trial or more each, in the order of their names), or aeon:NAME."""
    if not isinstance(data, str) or not data.strip():
        raise UsageError(f"--data must name a file (.npy, .npz, .csv), a folder of them, or aeon:NAME, got {data!r}")
    if Path(data).is_dir():
        return _read_folder(Path(data), drop, dt)
    if data.startswith("aeon:"):
        name = data[len("aeon:"):]
        if name not in AEON_RECORDINGS:
            raise UsageError(f"no shipped recording {name!r}; allowed: {', '.join(AEON_RECORDINGS)}")
        file, dropped, dt = AEON_RECORDINGS[name]
        path = aeon_data_folder() / name / file
        series, variables = _read_csv(path, [*dropped, *drop])
    else:
        path = data_file(data)
        suffix = path.suffix.lower()
        if suffix == ".csv":
            series, variables = _read_csv(path, drop)
        elif suffix in (".npy", ".npz"):
            if drop:
                raise UsageError(f"drop names columns of a .csv file; {data!r} is an array (select its variables "
                                 "before saving it)")
            series, variables = _read_array(path)
        else:
            raise UsageError(f"--data {data!r}: unknown kind of file {path.suffix!r}; allowed: .npy, .npz, .csv")
    series = series[None] if series.ndim == 2 else series
    repeated = sorted({v for v in variables if variables.count(v) > 1})
    if repeated:
        raise UsageError(f"{data}: the variable name {repeated[0]!r} is given more than once; name each once")
    bad = np.argwhere(~np.isfinite(series))
    if len(bad):
        trial, sample, variable = bad[0]
        raise UsageError(f"{data}: sample {sample} of variable {variables[variable]!r}"
                         f"{f' in trial {trial}' if series.shape[0] > 1 else ''} is not finite; fill or cut it first")
    return list(series), variables, dt, file_sha256(path)


def _read_folder(folder: Path, drop: list, dt: float) -> tuple[list[np.ndarray], list[str], float, str]:
    """Every .npy, .npz and .csv file of ``folder`` (not its subfolders), by name: their trials in that
    order, which may differ in length; the files must hold the same variables."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".npy", ".npz", ".csv"))
    if not files:
        raise UsageError(f"--data {str(folder)!r} is a folder without recordings (.npy, .npz or .csv files)")
    trials, digest, variables = [], hashlib.sha256(), None
    for path in files:
        found, names, _, sha = read_series(str(path), drop if path.suffix.lower() == ".csv" else [], dt)
        if min(len(t) for t in found) == 0:
            raise UsageError(f"{path} holds a trial without samples; remove it from the folder")
        if variables is not None and names != variables:
            raise UsageError(f"{path} holds the variables {names}; {files[0].name} holds {variables}: every "
                             "recording of a folder must hold the same ones")
        variables = names
        trials += found
        digest.update(f"{path.name}:{sha}\n".encode())
    return trials, variables, dt, digest.hexdigest()


def _read_array(path: Path) -> tuple[np.ndarray, list[str]]:
    try:
        if path.suffix.lower() == ".npy":
            x, names = np.load(path, allow_pickle=False), None
        else:
            with np.load(path, allow_pickle=False) as f:
                if "x" not in f.files:
                    raise UsageError(f"{path} has no array 'x' (it has {', '.join(f.files) or 'none'})")
                x, names = f["x"], (f["variables"].astype(str).tolist() if "variables" in f.files else None)
    except (ValueError, OSError) as e:
        raise UsageError(f"{path}: not a readable array file of numbers ({str(e).splitlines()[0][:120]})") from None
    if not np.issubdtype(x.dtype, np.number) or x.ndim not in (1, 2, 3):
        raise UsageError(f"{path}: the series must be numbers shaped (T,), (T, N) or (K, T, N), got {x.dtype} "
                         f"{x.shape}")
    x = x.astype(np.float64)
    x = x[:, None] if x.ndim == 1 else x
    names = names or [f"x{i}" for i in range(x.shape[-1])]
    if len(names) != x.shape[-1]:
        raise UsageError(f"{path}: {len(names)} variable names for {x.shape[-1]} variables")
    return x, names


def _read_csv(path: Path, drop: list) -> tuple[np.ndarray, list[str]]:
    header, lines = read_csv_rows(path)
    unknown = [d for d in drop if d not in header]
    if unknown:
        raise UsageError(f"{path} has no column {unknown[0]!r} to drop; its columns: {', '.join(header)}")
    keep = [i for i, name in enumerate(header) if name not in drop]
    if not keep:
        raise UsageError(f"{path}: every column is dropped; keep at least one variable")
    rows = [[number(row[i], path, line, header[i]) for i in keep] for line, row in lines]
    if not rows:
        raise UsageError(f"{path} has no samples")
    return np.array(rows), [header[i] for i in keep]


def _parts(trials: list, split: str, validation_fraction: float, test_fraction: float, data: str):
    """(train, validation, test), each a list of (T, N) trials: contiguous blocks of every trial in time,
    or whole trials (the last ones held out)."""
    k = len(trials)
    if split == "trials":
        n_test, n_val = max(1, round(test_fraction * k)), max(1, round(validation_fraction * k))
        if k - n_test - n_val < 1:
            raise UsageError(f"{data}: {k} trials cannot be split by trials into training, validation and test; "
                             "give more trials, or split by time")
        return trials[: k - n_test - n_val], trials[k - n_test - n_val : k - n_test], trials[k - n_test :]
    cuts = [(round((1 - validation_fraction - test_fraction) * len(t)), round((1 - test_fraction) * len(t)))
            for t in trials]
    return ([t[:a] for t, (a, _) in zip(trials, cuts)], [t[a:b] for t, (a, b) in zip(trials, cuts)],
            [t[b:] for t, (_, b) in zip(trials, cuts)])
