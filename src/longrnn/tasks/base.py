"""The Task protocol: a long-dependency problem with fixed evaluation sets and an honest baseline.

A task knows its shapes (`input_size`, `output_size`, `seq_len`), whether the model reads out on the
last step or on every step (`readout`), and how to score a prediction:

    x, y = task.sample(batch_size, generator)      # fresh training batch, x: (batch, time, input_size)
    task.loss(y_pred, y)                            # a scalar tensor to minimise
    task.metrics(y_pred, y)                         # {"mse": ..., ...} as floats
    task.validation_set(), task.test_set()          # fixed, seeded, never used for training
    task.baseline()                                 # the best memoryless predictor, scored on the test set

Per-step view (trainers that predict outcomes step by step, e.g. MemUP in training/memup.py):

    y_steps, scored = task.step_targets(y)          # a target at every step; scored: (batch, time) bool
    task.step_loss(y_hat, y_steps)                  # the loss of each step's prediction, no reduction

``scored`` marks the steps the task's ``loss`` and ``metrics`` look at; the target of any other step is a
filler and must be ignored. The defaults follow ``readout``: with "all" every step is scored and y already
has a time axis; with "last" only the last step is, and y is repeated along time.

`main_metric` names the metric used for model selection; `higher_is_better` says which way is good;
`solved_at` is the value of the main metric at which the task counts as solved (None: never stop early).
Validation and test sets use fixed seeds, independent of the run's seed, so all runs of a task are
scored on the same sequences.

Streaming (optional, tasks/streaming.py): a task that implements ``plan`` and ``window`` can be read
chunk by chunk, so sequences of any length are evaluated in memory that does not grow with it. A fixed
set whose inputs and per-step outputs would hold more than `STREAM_ABOVE_VALUES` values (64 MiB of
float32) is then *streamed*: its sequences are the windows of ``plan(size, fixed_set(split))`` and
``training.evaluate`` reads them in chunks with the state carried. For the copy tasks the plan draws
exactly what ``sample`` draws, so streamed and in-memory sets are the same sequences; for tasks filled
with noise (copy_first, adding) the streamed set is another draw of the same distribution (its noise
comes in keyed blocks), used at lengths no run trains at (copy_first's test set of 2,000: beyond 8,388
steps; the longest run under results/ has 600). The baseline of a streamed set is the population value
`expected_baseline`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from longrnn.errors import check_positive
from longrnn.streams import fixed_set

STREAM_ABOVE_VALUES = 2**24  # a fixed set larger than this (inputs + per-step outputs) is streamed
STREAM_BATCH_ABOVE_VALUES = 2**22  # a truncated-BPTT training batch larger than this is built chunk by chunk


class Task:
    """Base class of every task (the protocol in this module's docstring): subclasses set the shapes and
    class attributes below and implement `sample`, `loss`, `metrics`, `memoryless_prediction` and
    `expected_baseline`; `plan` and `window` make a task streamable."""

    name: str = ""
    input_size: int
    output_size: int
    seq_len: int
    readout: str = "last"  # "last" or "all"
    main_metric: str = "loss"
    higher_is_better: bool = False
    solved_at: float | None = None

    def __init__(self, validation_size: int = 1000, test_size: int = 2000):
        self.validation_size = None if validation_size is None else check_positive("validation_size", validation_size)
        self.test_size = None if test_size is None else check_positive("test_size", test_size)
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._plans: dict[str, dict] = {}
        self._baselines: dict[str, dict[str, float]] = {}

    # --- to implement -----------------------------------------------------------------------
    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh batch drawn from ``generator`` only: x (batch, seq_len, input_size) and its targets y
        ((batch, ...) for readout "last", (batch, seq_len, ...) for "all"; the task's docstring says which)."""
        raise NotImplementedError

    def loss(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        """The training loss of a batch's predictions (the model's outputs, shaped as y with output_size
        values per prediction): a scalar tensor, differentiable in ``y_pred``."""
        raise NotImplementedError

    def metrics(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> dict[str, float]:
        """The task's metrics of a batch's predictions as floats, ``main_metric`` among them."""
        raise NotImplementedError

    def memoryless_prediction(self, x: torch.Tensor) -> torch.Tensor:
        """The output, for inputs ``x``, of the best predictor that has no memory of the relevant input."""
        raise NotImplementedError

    def expected_baseline(self) -> dict[str, float]:
        """The memoryless predictor's expected metrics, derived in the task's docstring."""
        raise NotImplementedError

    def step_loss(self, y_hat: torch.Tensor, y_steps: torch.Tensor) -> torch.Tensor:
        """Loss of each prediction, no reduction: y_hat (..., output_size), y_steps (...) or (..., d) -> (...)."""
        raise NotImplementedError(f"task {self.name!r} has no per-step loss (needed by the memup trainer)")

    def plan(self, batch_size: int, generator: torch.Generator) -> dict:
        """Streaming: all that ``batch_size`` sequences need, as a dict of (batch, ...) tensors (streaming.py)."""
        raise NotImplementedError(f"task {self.name!r} cannot be read in chunks")

    def window(self, plan: dict, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Streaming: steps ``start..stop-1`` of the plan's sequences, ``(x, y)`` as `sample` gives them
        (readout "all": y of those steps; "last": the final target). A bad window is a ValueError."""
        raise NotImplementedError(f"task {self.name!r} cannot be read in chunks")

    def metric_sums(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> dict[str, tuple[float, int]]:
        """Streaming, readout "all": ``loss`` and each metric of a window as ``(sum, count)``, so that the
        sums over all windows divided by the counts are `loss` and `metrics` of the whole sequences."""
        raise NotImplementedError(f"task {self.name!r} cannot be scored in chunks")

    # --- shared -----------------------------------------------------------------------------
    @property
    def can_stream(self) -> bool:
        """Whether the task implements `plan` and `window`."""
        return type(self).plan is not Task.plan

    def set_size(self, split: str) -> int:
        """Sequences in the fixed ``"validation"`` or ``"test"`` set."""
        return self.validation_size if split == "validation" else self.test_size

    def _values(self, sequences: int) -> int:
        """The values ``sequences`` whole sequences hold: their inputs and, for readout "all", their per-step
        outputs."""
        per_step = self.input_size + (self.output_size if self.readout == "all" else 0)
        return sequences * self.seq_len * per_step

    def streamed(self, split: str) -> bool:
        """Whether the fixed ``split`` set is read in chunks (see the module docstring)."""
        return self.can_stream and self._values(self.set_size(split)) > STREAM_ABOVE_VALUES

    def streams_batch(self, batch_size: int) -> bool:
        """Whether a truncated-BPTT training batch of ``batch_size`` sequences is drawn as a plan and built
        chunk by chunk (training/bptt.py): a task that can stream does so above `STREAM_BATCH_ABOVE_VALUES`
        values (16 MiB of float32; copy at batch 32 beyond delay 6,878). The copy tasks' plans draw what
        `sample` draws; the noise-filled tasks' (beyond 65,536 steps at batch 32) are another draw."""
        return self.can_stream and self._values(batch_size) > STREAM_BATCH_ABOVE_VALUES

    def fixed_plan(self, split: str) -> dict:
        """The plan of the fixed ``split`` set (the set itself when `streamed`)."""
        if split not in self._plans:
            self._plans[split] = self.plan(self.set_size(split), fixed_set(split))
        return self._plans[split]

    def step_targets(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y_steps, scored)``: a target for every step (batch, time, ...) and which steps are scored."""
        batch = y.shape[0]
        if self.readout == "all":
            return y, torch.ones(batch, self.seq_len, dtype=torch.bool, device=y.device)
        scored = torch.zeros(batch, self.seq_len, dtype=torch.bool, device=y.device)
        scored[:, -1] = True
        return y.unsqueeze(1).expand(batch, self.seq_len, *y.shape[1:]), scored

    def window_targets(self, y: torch.Tensor, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`step_targets` of the steps ``start..stop-1`` alone, for y as ``window(plan, start, stop)`` gives it:
        ``(y_steps, scored)``, (batch, stop - start, ...) and (batch, stop - start)."""
        batch, steps = y.shape[0], stop - start
        if self.readout == "all":
            return y, torch.ones(batch, steps, dtype=torch.bool, device=y.device)
        scored = torch.zeros(batch, steps, dtype=torch.bool, device=y.device)
        scored[:, -1] = stop == self.seq_len
        return y.unsqueeze(1).expand(batch, steps, *y.shape[1:]), scored

    def baseline(self, split: str = "test") -> dict[str, float]:
        """Metrics of `memoryless_prediction` on the fixed ``test`` (or ``validation``) set.

        Scored on the very sequences the models are scored on, so a model that learned nothing lands on
        the baseline, not below it by the luck of the draw (`expected_baseline` is the population value).
        """
        key = f"baseline/{split}"
        if key not in self._baselines and self.streamed(split):
            self._baselines[key] = self.expected_baseline()
        if key not in self._baselines:
            x, y = self.test_set() if split == "test" else self.validation_set()
            self._baselines[key] = self.metrics(self.memoryless_prediction(x), y)
        return self._baselines[key]

    def _fixed_set(self, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in self._cache:
            self._cache[split] = self.window(self.fixed_plan(split), 0, self.seq_len) if self.streamed(split) \
                else self.sample(size, fixed_set(split))
        return self._cache[split]

    def validation_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed validation set (x, y) of ``validation_size`` sequences, drawn from the split's own seed
        (the same for every run), built once and cached."""
        return self._fixed_set("validation", self.validation_size)

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed test set (x, y) of ``test_size`` sequences, drawn from a seed of its own; read once, at
        the end of a run, with the weights chosen on validation."""
        return self._fixed_set("test", self.test_size)

    def is_solved(self, metrics: dict[str, float]) -> bool:
        """Whether ``metrics`` reach ``solved_at`` on the main metric (never, when solved_at is None)."""
        if self.solved_at is None or self.main_metric not in metrics:
            return False
        value = metrics[self.main_metric]
        return value >= self.solved_at if self.higher_is_better else value <= self.solved_at

    def better(self, a: float, b: float | None) -> bool:
        """Is main-metric value ``a`` better than ``b`` (None counts as worst)?"""
        if b is None:
            return True
        return a > b if self.higher_is_better else a < b

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seq_len={self.seq_len})"


class SquaredErrorLoss:
    """Mixin for regression tasks scored on every output value: mean squared error, and per step the
    squared error averaged over the output dimensions (so `step_loss` averages to `loss`)."""

    def loss(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(y_pred, y_true)

    def step_loss(self, y_hat: torch.Tensor, y_steps: torch.Tensor) -> torch.Tensor:
        return (y_hat - y_steps).pow(2).mean(dim=-1)
