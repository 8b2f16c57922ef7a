"""The Task protocol: a long-dependency problem with fixed evaluation sets and an honest baseline.

A task knows its shapes (`input_size`, `output_size`, `seq_len`), whether the model reads out on the
last step or on every step (`readout`), and how to score a prediction:

    x, y = task.sample(batch_size, generator)      # fresh training batch, x: (batch, time, input_size)
    task.loss(y_pred, y)                            # a scalar tensor to minimise
    task.metrics(y_pred, y)                         # {"mse": ..., ...} as floats
    task.validation_set(), task.test_set()          # fixed, seeded, never used for training
    task.baseline()                                 # the best memoryless predictor, scored on the test set

`main_metric` names the metric used for model selection; `higher_is_better` says which way is good;
`solved_at` is the value of the main metric at which the task counts as solved (None: never stop early).
Validation and test sets use fixed seeds, independent of the run's seed, so all runs of a task are
scored on the same sequences.
"""

from __future__ import annotations

import torch

VALIDATION_SEED = 1_000_003
TEST_SEED = 2_000_003


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
        self.validation_size = validation_size
        self.test_size = test_size
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

    # --- shared -----------------------------------------------------------------------------
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

    def _fixed_set(self, split: str, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in self._cache:
            self._cache[split] = self.sample(size, torch.Generator().manual_seed(seed))
        return self._cache[split]

    def validation_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._fixed_set("validation", self.validation_size, VALIDATION_SEED)

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._fixed_set("test", self.test_size, TEST_SEED)

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
