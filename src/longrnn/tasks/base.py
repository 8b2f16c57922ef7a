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
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from longrnn.errors import check_positive
from longrnn.streams import fixed_set


class Task:
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
        self._baselines: dict[str, dict[str, float]] = {}

    # --- to implement -----------------------------------------------------------------------
    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def loss(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> dict[str, float]:
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

    # --- shared -----------------------------------------------------------------------------
    def step_targets(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y_steps, scored)``: a target for every step (batch, time, ...) and which steps are scored."""
        batch = y.shape[0]
        if self.readout == "all":
            return y, torch.ones(batch, self.seq_len, dtype=torch.bool, device=y.device)
        scored = torch.zeros(batch, self.seq_len, dtype=torch.bool, device=y.device)
        scored[:, -1] = True
        return y.unsqueeze(1).expand(batch, self.seq_len, *y.shape[1:]), scored

    def baseline(self, split: str = "test") -> dict[str, float]:
        """Metrics of `memoryless_prediction` on the fixed ``test`` (or ``validation``) set.

        Scored on the very sequences the models are scored on, so a model that learned nothing lands on
        the baseline, not below it by the luck of the draw (`expected_baseline` is the population value).
        """
        key = f"baseline/{split}"
        if key not in self._baselines:
            x, y = self.test_set() if split == "test" else self.validation_set()
            self._baselines[key] = self.metrics(self.memoryless_prediction(x), y)
        return self._baselines[key]

    def _fixed_set(self, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in self._cache:
            self._cache[split] = self.sample(size, fixed_set(split))
        return self._cache[split]

    def validation_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._fixed_set("validation", self.validation_size)

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._fixed_set("test", self.test_size)

    def is_solved(self, metrics: dict[str, float]) -> bool:
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
