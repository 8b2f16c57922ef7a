"""Your own sequences: classify them or regress on them (``longrnn train --task sequences --data FILE``).

Where the data comes from (`longrnn.tasks.sequence_files` reads each into one form):

* ``.npz``: ``x`` as an (N, T, F) or (N, T) array, or an object array of N (T_i, F) arrays; ``y`` as class
  labels (N,) (an integer, boolean or text array) or real targets (N,) / (N, C) (a float array), or per
  step: (N, T) whole numbers (classes; -100 marks a step without target) or (N, T, C) values (NaN marks
  one), T at least the longest sequence;
  optional ``lengths`` (N,) (each sequence is ``x[i, :lengths[i]]``) and ``split`` (N,) of "train" /
  "validation" / "test". numpy stores an object array pickled, so that one is read only with
  ``allow_pickle=true`` (unpickling runs code: only for files you made); padded (N, T, F) with
  ``lengths`` needs nothing of the kind.
* ``.csv`` in long format: one row per (sequence, step), columns ``id``, ``time``, the features and the
  target ``y`` (names set by the options ``id_column``, ``time_column``, ``target_column``; every other
  column is a feature), and optionally ``split``. The target is one per sequence (the same on each of
  its rows), or with ``step_targets=true`` one per step (whole numbers are classes, -100 for a step
  without one; numbers with a point are values, ``nan`` for a step without one).
* ``.ts`` (the UEA/UCR archives' format) and ``aeon:NAME`` (an archive shipped inside aeon: JapaneseVowels,
  BasicMotions, ...) through aeon, the extra ``[ts]``; the archive's own train/test split is kept.

The protocol, the same as the built-in tasks': a split given by the data is kept (test stays test);
what it does not give is drawn once from the seeded permutation ``split_seed`` (a stream of its own,
`longrnn.streams`), ``validation_fraction`` and ``test_fraction`` of the sequences (validation from the
training part when only a test part is given); an empty part is refused before training. Features are
standardised (in float64) with the mean and standard deviation of the training part's steps alone, and so
are real targets (their MSE is then in units of the training targets' variance: 1.0 is about what the
training mean scores). A NaN input is refused, naming its sequence and step, unless ``nan`` says how to
fill it: "mean" (the feature's training mean) or "previous" (the sequence's last observed value; the mean
before the first).
Classes are the training part's labels in sorted order (numerals by value); one class alone, or a label
of a held-out part that the training part lacks, is refused. The objective follows the targets' type —
integers, booleans or text: classes (cross-entropy, accuracy); floating point: regression (MSE), so
37.0 is a value, not a class — or ``objective=`` says it. In a .csv, "3" is an integer, "3.0" a value.

Sequences of different lengths are given to the model as a `torch.nn.utils.rnn.PackedSequence`
(`longrnn.models.SequenceModel` reads each one out at its own last step, or at every step for per-step
targets, the readout "all"); when all have one length, as a plain (batch, T, F) tensor. Every trainer
takes them (`longrnn.training`).

The memoryless baseline is the better, on the validation part, of two predictors that see no history:
the training part's class prior (regression: its mean), and a model of the last step's input alone
(multinomial logistic regression, or least squares, fitted on the training part) — so "memory helped" is
measured, not assumed. Both are in `baselines`. With per-step targets, "last input" is the input of the
same step (the last one seen when that step is predicted).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from longrnn.errors import UsageError, check_bool, check_choice, check_positive
from longrnn.streams import stream
from longrnn.tasks.base import Task
from longrnn.tasks.baselines import fit_last_input_classifier, fit_last_input_regression
from longrnn.tasks.registry import register
from longrnn.tasks.sequence_files import SequenceData, pad, read_sequences

OBJECTIVES = ("auto", "classification", "regression")
SPLITS = ("train", "validation", "test")
NAN_POLICIES = ("refuse", "mean", "previous")
NO_CLASS = -100  # a per-step class target that is not scored (torch's ignore_index)


@register("sequences", "your own sequences (--data FILE: .npz, .csv, .ts or aeon:NAME), classified or regressed")
class Sequences(Task):
    readout = "last"

    def __init__(
        self,
        data: str | None = None,
        objective: str = "auto",
        validation_fraction: float = 0.2,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        standardize: bool = True,
        id_column: str = "id",
        time_column: str = "time",
        target_column: str = "y",
        allow_pickle: bool = False,
        nan: str = "refuse",
        step_targets: bool = False,
        validation_size: int | None = None,
        test_size: int | None = None,
    ):
        if data is None:
            raise UsageError("task 'sequences' needs its data: --data FILE (.npz, .csv, .ts) or --data aeon:NAME")
        check_choice("objective", objective, OBJECTIVES)
        for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
                raise UsageError(f"{name} must be in [0, 1), got {value!r}")
        if validation_fraction + test_fraction >= 1:
            raise UsageError(f"validation_fraction + test_fraction must leave a training part, got "
                             f"{validation_fraction} + {test_fraction}")
        check_positive("split_seed", split_seed, allow_zero=True)
        check_choice("nan", nan, NAN_POLICIES)
        super().__init__(validation_size=validation_size, test_size=test_size)
        self.data = data
        found = read_sequences(data, id_column=id_column, time_column=time_column, target_column=target_column,
                               allow_pickle=check_bool("allow_pickle", allow_pickle), missing_inputs=nan != "refuse",
                               step_targets=check_bool("step_targets", step_targets))
        self.fingerprint = found.fingerprint
        self.parts = _split(found, validation_fraction, test_fraction, split_seed)
        check_bool("standardize", standardize)
        self.per_step = _per_step(found)
        self.readout = "all" if self.per_step else "last"
        self.objective = _objective(found.y, objective, self.per_step)
        x, self.lengths = pad(_fill_missing(found.x, nan, self.parts["train"]))  # (N, T, F) float64, zeros
        if standardize:
            x = _standardize(x, self.lengths, self.parts["train"])
        self.x = _as_float32(x, data)
        self.input_size = self.x.shape[-1]
        self.seq_len = self.x.shape[1]
        if self.objective == "classification":
            self.classes, self.y = _classes(found.y, self.parts, self.lengths if self.per_step else None)
            self.target_scale = None
            self.output_size = len(self.classes)
            self.main_metric, self.higher_is_better = "accuracy", True
        else:
            self.classes, self.y = None, _real_targets(found.y, self.lengths if self.per_step else None)
            self.target_scale = _target_scale(self.y[self.parts["train"]]) if standardize else None
            if self.target_scale is not None:
                self.y = (self.y - self.target_scale[0]) / self.target_scale[1]
            self.output_size = self.y.shape[-1]
            self.main_metric, self.higher_is_better = "mse", False
        self.solved_at = None
        if self.per_step:
            self._check_scored_steps()
        self.variable_length = bool((self.lengths != self.lengths[0]).any())
        for split in ("validation", "test"):  # before any training, not at the first evaluation
            if not len(self.parts[split]):
                advice = (f"mark some sequences {split} in its split" if found.split is not None else
                          f"give more sequences, or a larger {split}_fraction")
                raise UsageError(f"the {split} part of {data!r} is empty; {advice}")

    def _check_scored_steps(self) -> None:
        """Per-step targets: every part has a step with a target, and every target has a value somewhere
        in the training part (else nothing can be learned or scored)."""
        for split, rows in self.parts.items():
            y = self.y[rows]
            scored = y != NO_CLASS if self.objective == "classification" else ~y.isnan()
            if not scored.any():
                raise UsageError(f"the {split} part of {self.data!r} has no step with a target (all -100 or NaN); "
                                 "nothing could be " + ("learned" if split == "train" else "scored"))
            if split == "train" and scored.dim() == 3 and not scored.any(dim=(0, 1)).all():
                missing = int((~scored.any(dim=(0, 1))).nonzero()[0])
                raise UsageError(f"target {missing} of {self.data!r} has no value in the training part; drop it")

    # --- batches -------------------------------------------------------------------------------------
    def _batch(self, indices: torch.Tensor):
        """(x, y) of the sequences ``indices``: x a PackedSequence when their lengths differ."""
        lengths = self.lengths[indices]
        x = self.x[indices, : int(lengths.max())]
        y = self.y[indices, : int(lengths.max())] if self.per_step else self.y[indices]
        if bool((lengths == lengths[0]).all()):
            return x, y
        return pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False), y

    def sample(self, batch_size: int, generator: torch.Generator):
        pick = torch.randint(0, len(self.parts["train"]), (batch_size,), generator=generator)
        return self._batch(self.parts["train"][pick])

    def _held_out(self, split: str, cap: int | None):
        if split not in self._cache:
            indices = self.parts[split][:cap]
            self._cache[split] = self._batch(indices)
        return self._cache[split]

    def validation_set(self):
        return self._held_out("validation", self.validation_size)

    def test_set(self):
        return self._held_out("test", self.test_size)

    # --- scoring -------------------------------------------------------------------------------------
    def loss(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        """Cross-entropy or MSE; per-step targets: over the steps that have a target (class -100 and NaN
        mark those without, as after each sequence's end)."""
        if self.objective == "classification":
            flat = y_true.reshape(-1)
            total = F.cross_entropy(y_pred.reshape(-1, y_pred.shape[-1]), flat, ignore_index=NO_CLASS, reduction="sum")
            return total / (flat != NO_CLASS).sum().clamp(min=1)  # a batch without a scored step: 0, not NaN
        if not self.per_step:
            return F.mse_loss(y_pred, y_true)
        scored = ~y_true.isnan()
        return (y_pred - y_true.nan_to_num()).square().mul(scored).sum() / scored.sum().clamp(min=1)

    def step_targets(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y_steps, scored)`` for MemUP: per-step targets where they are given, else the base rule."""
        if not self.per_step:
            return super().step_targets(y)
        if self.objective == "classification":
            return y.clamp(min=0), y != NO_CLASS
        return y.nan_to_num(), ~y.isnan().any(-1)

    def step_loss(self, y_hat: torch.Tensor, y_steps: torch.Tensor) -> torch.Tensor:
        """The loss of each step's prediction (MemUP): cross-entropy, or squared error averaged over C."""
        if self.objective == "classification":
            per = F.cross_entropy(y_hat.reshape(-1, y_hat.shape[-1]), y_steps.reshape(-1), reduction="none")
            return per.reshape(y_steps.shape)
        return (y_hat - y_steps).pow(2).mean(dim=-1)

    @torch.no_grad()
    def metrics(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> dict[str, float]:
        if self.objective == "classification":
            scored = y_true != NO_CLASS
            accuracy = (y_pred.argmax(dim=-1) == y_true)[scored].float().mean()
            return {"ce": float(self.loss(y_pred, y_true)), "accuracy": float(accuracy)}
        return {"mse": float(self.loss(y_pred, y_true))}

    # --- the memoryless baselines --------------------------------------------------------------------
    def baselines(self, split: str = "test") -> dict[str, dict[str, float]]:
        """The metrics on ``split`` of each predictor without history: ``"prior"`` (the training part's
        class frequencies, or mean) and ``"last input"`` (a model of the last step's input alone)."""
        x, y = self.test_set() if split == "test" else self.validation_set()
        return {name: self.metrics(self._apply(predict, x), y) for name, predict in self._predictors().items()}

    def memoryless_prediction(self, x) -> torch.Tensor:
        """The better of the two `baselines` on the validation part, applied to ``x``."""
        predictors = self._predictors()
        if "choice" not in self._cache:
            scores = self.baselines("validation")
            pick = max if self.higher_is_better else min
            self._cache["choice"] = pick(scores, key=lambda name: scores[name][self.main_metric])
        return self._apply(predictors[self._cache["choice"]], x)

    def _apply(self, predict, x) -> torch.Tensor:
        """A memoryless predictor on each sequence's last input, or (per-step targets) on every step's."""
        if not self.per_step:
            return predict(_last_inputs(x))
        padded = torch.nn.utils.rnn.pad_packed_sequence(x, batch_first=True)[0] if isinstance(x, PackedSequence) \
            else x
        return predict(padded.reshape(-1, padded.shape[-1])).reshape(*padded.shape[:2], -1)

    def _training_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs (n, F) float64, targets) the memoryless predictors are fitted on: each training sequence's
        last input and target, or (per-step targets) every training step that has a target."""
        train = self.parts["train"]
        if not self.per_step:
            return _last_inputs(self._batch(train)[0]).double(), self.y[train]
        steps = self.x[train].double().reshape(-1, self.input_size)
        y = self.y[train].reshape(-1, *self.y.shape[2:])
        scored = y != NO_CLASS if self.objective == "classification" else ~y.isnan().all(-1)
        return steps[scored], y[scored]  # (regression: a target that a step lacks stays NaN)

    def expected_baseline(self) -> dict[str, float]:
        """No closed form for data: the class prior's (regression: the training mean's) test metrics."""
        return self.baselines("test")["prior"]

    def _predictors(self) -> dict:
        if "predictors" not in self._cache:
            last, y = self._training_pairs()
            if self.objective == "classification":
                counts = torch.bincount(y, minlength=self.output_size).double()
                log_prior = (counts / counts.sum()).clamp_min(1e-12).log()
                weight, bias = fit_last_input_classifier(last, y, log_prior)
                self._cache["predictors"] = {
                    "prior": lambda z: log_prior.float().expand(len(z), -1),
                    "last input": lambda z: (z.double() @ weight + bias).log_softmax(-1).float(),
                }
            else:
                mean, weight, bias = _fit_regression_baselines(last, y.double())
                self._cache["predictors"] = {
                    "prior": lambda z: mean.float().expand(len(z), -1),
                    "last input": lambda z: (z.double() @ weight + bias).float(),
                }
        return self._cache["predictors"]

    def describe(self) -> dict:
        """What a run directory records of its data (``data.json``): the source, its SHA-256, the split
        (indices of each part) and the classes, so a changed file is noticed on ``--resume``."""
        scale = self.target_scale
        return {"data": self.data, "sha256": self.fingerprint, "objective": self.objective,
                **({"target_mean": scale[0].tolist(), "target_std": scale[1].tolist()} if scale is not None else {}),
                "classes": self.classes, "sizes": {k: len(v) for k, v in self.parts.items()},
                "split": {k: v.tolist() for k, v in self.parts.items()}}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.parts.items())
        return f"Sequences(data={self.data!r}, {self.objective}, {sizes}, features {self.input_size})"


# --- building blocks (module level: each small and tested through the task) ------------------------------
def _split(found: SequenceData, validation_fraction: float, test_fraction: float, seed: int) -> dict:
    """{part: sorted indices (long)}: the data's own split where it gives one; what it does not give is
    drawn from the permutation of stream ``(seed, "split")`` — test then validation from all sequences
    when the data gives no split, validation from the training part when it gives train and test only."""
    n = len(found.x)
    order = torch.randperm(n, generator=stream(seed, "split")).numpy()
    given = found.split[order] if found.split is not None else np.full(n, "train", dtype=object)
    parts = {name: order[given == name] for name in SPLITS}
    pool = parts["train"]
    if found.split is None:
        n_test, n_val = round(test_fraction * n), round(validation_fraction * n)
        parts["test"], parts["validation"], pool = pool[:n_test], pool[n_test : n_test + n_val], pool[n_test + n_val :]
    elif not len(parts["validation"]):
        n_val = round(validation_fraction * len(pool))
        parts["validation"], pool = pool[:n_val], pool[n_val:]
    parts["train"] = pool
    if not len(pool):
        raise UsageError(f"the training part of {found.source!r} is empty ({n} sequences); give more sequences or "
                         "smaller fractions")
    return {k: torch.as_tensor(np.sort(v).astype(np.int64)) for k, v in parts.items()}


def _per_step(found: SequenceData) -> bool:
    """Per-step targets: y (N, T, C) real values, or (N, T) whole numbers (classes; -100: no target), with
    T at least the longest sequence (steps after each sequence's end are not scored)."""
    y, longest = found.y, max(len(x) for x in found.x)
    integral = np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)
    if not (y.ndim == 3 or (y.ndim == 2 and integral)):
        return False
    if y.shape[1] < longest:
        raise UsageError(f"{found.source}: per-step targets {y.shape} cover {y.shape[1]} steps; the longest sequence "
                         f"has {longest}")
    return True


def _fill_missing(xs: list[np.ndarray], nan: str, train: torch.Tensor) -> list[np.ndarray]:
    """NaN inputs filled as ``nan`` says: "mean" — the feature's mean over the training part's steps;
    "previous" — the last observed value of the same sequence and feature (the mean before the first)."""
    if nan == "refuse" or not any(np.isnan(x).any() for x in xs):
        return xs
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a feature never observed in training: NaN mean
        mean = np.nanmean(np.concatenate([xs[i] for i in train.tolist()]), axis=0)
    if np.isnan(mean).any():
        raise UsageError(f"feature {int(np.flatnonzero(np.isnan(mean))[0])} is never observed in the training "
                         "part; drop it, nothing can fill it")
    filled = []
    for x in xs:
        x = x.copy()
        if nan == "previous":
            for t in range(1, len(x)):
                gap = np.isnan(x[t])
                x[t, gap] = x[t - 1, gap]
        gap = np.isnan(x)
        x[gap] = np.broadcast_to(mean, x.shape)[gap]
        filled.append(x)
    return filled


def _objective(y: np.ndarray, objective: str, per_step: bool = False) -> str:
    """Whole numbers (an integer array), booleans and text are classes; floating-point values are real
    targets (37.0 is a value, not a class); ``objective`` overrides."""
    if y.ndim > 2 and not per_step:
        raise UsageError(f"targets must be (N,), (N, C) or per step (N, T, C), got shape {y.shape}")
    if per_step and objective == "classification" and y.ndim == 3:
        raise UsageError("per-step class targets are (N, T) whole numbers; (N, T, C) targets are values "
                         "(objective regression)")
    if objective != "auto":
        if objective == "regression" and not np.issubdtype(y.dtype, np.number):
            kind = "boolean" if np.issubdtype(y.dtype, np.bool_) else "text"
            raise UsageError(f"objective 'regression' needs numeric targets; these are {kind} labels")
        if objective == "regression" and per_step and y.ndim == 2:
            raise UsageError("per-step (N, T) whole-number targets are classes (-100: no target); save per-step "
                             "values as floats (N, T, C), NaN where a step has none")
        return objective
    return "regression" if np.issubdtype(y.dtype, np.floating) else "classification"


def _classes(y: np.ndarray, parts: dict, lengths: torch.Tensor | None = None) -> tuple[list, torch.Tensor]:
    """(the training part's classes, sorted; the targets as class indices (N,), or (N, T) with -100 where
    a step has no target). ``lengths``: per-step targets (N, T) of sequences of these lengths."""
    if lengths is not None:
        return _step_classes(y, parts, lengths)
    if y.ndim != 1:
        raise UsageError(f"class labels must be one per sequence, shape (N,), or per step (N, T) whole numbers; "
                         f"got {y.dtype} {y.shape}")
    train_labels = sorted(np.unique(y[parts["train"].numpy()]).tolist(), key=_natural)
    if len(train_labels) < 2:
        raise UsageError(f"the training part has one class ({train_labels[0]!r}); classification needs two or more "
                         "(real-valued targets? set task.options.objective=regression)")
    for split in ("validation", "test"):
        missing = sorted(set(np.unique(y[parts[split].numpy()]).tolist()) - set(train_labels))
        if missing:
            raise UsageError(f"labels {missing[:5]} of the {split} part never occur in the training part; a model "
                             "cannot learn them (give more training sequences or another split; real-valued "
                             "targets? set task.options.objective=regression)")
    index = {label: i for i, label in enumerate(train_labels)}
    return [str(c) if not isinstance(c, (int, float)) else c for c in train_labels], \
        torch.tensor([index[label] for label in y.tolist()], dtype=torch.long)


def _step_classes(y: np.ndarray, parts: dict, lengths: torch.Tensor) -> tuple[list, torch.Tensor]:
    """Per-step class targets (N, T): the training part's scored steps name the classes; a held-out class
    the training part lacks is refused, as for one label per sequence."""
    time = int(lengths.max())
    y = torch.as_tensor(y[:, :time].astype(np.int64))
    y = y.masked_fill(torch.arange(time) >= lengths.unsqueeze(1), NO_CLASS)
    if ((y < 0) & (y != NO_CLASS)).any():
        raise UsageError(f"per-step classes must be whole numbers >= 0, or {NO_CLASS} for a step without target")

    def labels(part):
        return set(y[parts[part]][y[parts[part]] != NO_CLASS].tolist())

    train_labels = sorted(labels("train"))
    if len(train_labels) < 2:
        raise UsageError(f"the training part's steps hold {len(train_labels)} class(es); classification needs two "
                         "or more")
    for split in ("validation", "test"):
        missing = sorted(labels(split) - set(train_labels))
        if missing:
            raise UsageError(f"classes {missing[:5]} of the {split} part's steps never occur in the training part")
    index = torch.searchsorted(torch.tensor(train_labels), y.clamp(min=0))  # held-out labels are all in it
    return train_labels, torch.where(y == NO_CLASS, y, index)


def _natural(label):
    """Sort key: text labels that are whole numbers ("2", "10") in numeric order, the rest as text."""
    return (0, int(label), "") if isinstance(label, str) and label.isdigit() else (1, 0, str(label))


def _real_targets(y: np.ndarray, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """(N, C) float32 targets, or per step (N, T, C) with NaN where a step has none (after each sequence's
    end, given ``lengths``); a value float32 cannot hold is a UsageError (scale the targets first)."""
    with np.errstate(over="ignore"):
        y = torch.as_tensor(np.asarray(y, dtype=np.float32))
    if torch.isinf(y).any():
        raise UsageError("targets beyond float32's range (±3.4e38); scale them first")
    if lengths is None:
        return y.unsqueeze(1) if y.dim() == 1 else y
    y = y.unsqueeze(-1) if y.dim() == 2 else y
    time = int(lengths.max())
    return y[:, :time].masked_fill((torch.arange(time) >= lengths.unsqueeze(1)).unsqueeze(-1), float("nan"))


def _fit_regression_baselines(last: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(mean (C,), weight (F, C), bias (C,)) of the two memoryless regressions, each target fitted on the
    steps that have it (NaN: missing)."""
    fits = []
    for c in range(y.shape[1]):
        has = ~y[:, c].isnan()
        w, b = fit_last_input_regression(last[has], y[has, c : c + 1])
        fits.append((y[has, c].mean(), w[:, 0], b[0]))
    mean, weight, bias = zip(*fits)
    return torch.stack(mean), torch.stack(weight, 1), torch.stack(bias)


def _target_scale(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, standard deviation) per target of the training part (NaN — no target — left out); a constant
    target keeps its scale."""
    flat = train.double().reshape(-1, train.shape[-1])
    mean = flat.nanmean(0)
    std = (flat - mean).square().nanmean(0).sqrt()
    return mean.float(), torch.where(std > 0, std, torch.ones_like(std)).float()


def _as_float32(x: torch.Tensor, data: str) -> torch.Tensor:
    """The model's float32 inputs; a value float32 cannot hold (beyond ±3.4e38, e.g. unstandardised) is a
    UsageError."""
    out = x.float()
    if not torch.isfinite(out).all():
        raise UsageError(f"{data}: inputs beyond float32's range (±3.4e38); standardise them "
                         "(task.options.standardize=true) or scale them first")
    return out


def _standardize(x: torch.Tensor, lengths: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """Each feature shifted and scaled by its mean and standard deviation over the training part's
    steps (padding excluded); a constant feature is only shifted. Padding stays zero."""
    valid = torch.arange(x.shape[1]) < lengths.unsqueeze(1)  # (N, T)
    steps = x[train][valid[train]]  # (steps, F), float64
    mean, std = steps.mean(0), steps.std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return torch.where(valid.unsqueeze(-1), (x - mean) / std, torch.zeros_like(x))


def _last_inputs(x) -> torch.Tensor:
    """(batch, F): each sequence's input at its own last step."""
    if isinstance(x, PackedSequence):
        padded, lengths = torch.nn.utils.rnn.pad_packed_sequence(x, batch_first=True)
        return padded[torch.arange(len(lengths)), lengths - 1]
    return x[:, -1]

