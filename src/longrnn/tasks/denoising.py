"""The denoising task: pick out a few marked values from a stream of noise and replay them at the end.

Source: Lambrechts, De Geeter, Vecoven, Ernst & Drion 2023 (warm-up paper), code ``glambrechts/warmup``
``datasets.py``, which follows the BRC paper (Vecoven, Ernst & Drion 2021).

Input x (batch, T, 2):

* channel 0: N(0, 1) noise at every step, the output phase included;
* channel 1: 1.0 at ``n_values`` steps drawn without replacement from [0, T - pad_length), -1.0 at step
  T - n_values (the signal to start replaying), 0.0 elsewhere.

Target y (batch, n_values): the marked noise values in time order. The model reads out at every step
(y_pred (batch, T, 1)), but only the last ``n_values`` outputs are scored: the loss is the MSE between
y_pred[:, -n_values:, 0] and y. ``pad_length`` is the length of the tail in which no value is marked, so
it sets the shortest dependency; it must be >= n_values so that no mark falls in the output phase.

Baseline: the marked values are N(0, 1) and independent of everything a memoryless predictor sees when it
answers, so its best guess is 0, with MSE 1. Solved at MSE 0.05.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from longrnn.errors import UsageError, check_positive
from longrnn.tasks.base import Task
from longrnn.tasks.registry import register


@register("denoising", "replay n_values marked noise values at the end (warm-up paper, BRC)")
class Denoising(Task):
    input_size = 2
    output_size = 1
    readout = "all"
    main_metric = "mse"
    higher_is_better = False
    solved_at = 0.05

    def __init__(
        self,
        seq_len: int = 100,
        pad_length: int = 5,
        n_values: int = 5,
        validation_size: int = 1000,
        test_size: int = 2000,
    ):
        super().__init__(validation_size=validation_size, test_size=test_size)
        self.seq_len = check_positive("seq_len", seq_len)
        self.pad_length = check_positive("pad_length", pad_length)
        self.n_values = check_positive("n_values", n_values)
        if pad_length < n_values:
            raise UsageError(f"pad_length must be >= n_values ({n_values}), got {pad_length!r}")
        if seq_len - pad_length < n_values:
            raise UsageError(
                f"seq_len must be >= pad_length + n_values ({pad_length + n_values}), got {seq_len!r}"
            )

    def marked_positions(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """(batch, n_values) long: distinct steps in [0, T - pad_length), sorted in time order."""
        scores = torch.rand(batch_size, self.seq_len - self.pad_length, generator=generator)
        chosen = scores.argsort(dim=1)[:, : self.n_values]  # a uniform random subset
        return chosen.sort(dim=1).values

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn(batch_size, self.seq_len, generator=generator)
        positions = self.marked_positions(batch_size, generator)
        marker = torch.zeros_like(noise).scatter_(1, positions, 1.0)
        marker[:, self.seq_len - self.n_values] = -1.0
        x = torch.stack([noise, marker], dim=-1)
        return x, noise.gather(1, positions)

    def loss(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(y_pred[:, -self.n_values :, 0], y_true)

    def step_targets(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Targets (batch, T, 1): the marked values on the last ``n_values`` steps (scored), zeros before."""
        y_steps = torch.zeros(y.shape[0], self.seq_len, 1, dtype=y.dtype, device=y.device)
        y_steps[:, -self.n_values :, 0] = y
        scored = torch.zeros(y.shape[0], self.seq_len, dtype=torch.bool, device=y.device)
        scored[:, -self.n_values :] = True
        return y_steps, scored

    def step_loss(self, y_hat: torch.Tensor, y_steps: torch.Tensor) -> torch.Tensor:
        return (y_hat - y_steps).pow(2).mean(dim=-1)

    @torch.no_grad()
    def metrics(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> dict[str, float]:
        return {"mse": float(self.loss(y_pred, y_true))}

    def memoryless_prediction(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], x.shape[1], 1)

    def expected_baseline(self) -> dict[str, float]:
        return {"mse": 1.0}

    def __repr__(self) -> str:
        return f"Denoising(seq_len={self.seq_len}, pad_length={self.pad_length}, n_values={self.n_values})"
