"""The adding and multiplication problems: two marked values, combined at the last step.

Input x (batch, T, 2): channel 0 holds i.i.d. values U[0, 1), channel 1 is a marker that is 1 at exactly
two steps and 0 elsewhere. The target y (batch, 1) combines the two marked values: their sum (`adding`,
Hochreiter & Schmidhuber 1997) or their product (`multiplication`). The model reads out once, after the
last step, and is trained with MSE.

Two marker layouts (`variant`):

* ``"standard"`` (Hochreiter & Schmidhuber 1997 as used by Arjovsky, Shah & Bengio 2016, "Unitary
  evolution RNNs"; also S4's ``adding.py``): the first marker is uniform in [0, T//2), the second uniform
  in [T//2, T). Needs seq_len >= 2.
* ``"rplrnn"`` (Schmidt et al., ICLR 2021, code ``DurstewitzLab/reg-PLRNN`` ``datasets.py``): one marker is
  uniform in [0, 10), the other uniform in [0, T//2), both redrawn while they coincide. Both markers are
  early in the sequence and in random order, so the memory span is at least T/2. Needs seq_len >= 10, so
  that the range [0, 10) fits inside the sequence (the original code would index out of range below).

Metrics: ``mse`` and ``correct``, the fraction of predictions within 0.04 of the target (the rPLRNN
paper's P_correct). The model is selected on ``mse`` and counts as solved at 5% of the baseline MSE.

Baseline: the marked values U, V are independent U[0, 1) in both layouts, and a predictor without memory
of them can do no better (in MSE) than the constant E[f(U, V)]:

* adding: predict 1, MSE Var(U + V) = 1/6. U + V has the triangular density 1 - |s - 1| on [0, 2], so
  P(|U + V - 1| < a) = 2a - a^2 = 0.0784 for a = 0.04.
* multiplication: predict 1/4, MSE E[U^2 V^2] - 1/16 = 1/9 - 1/16 = 7/144. UV has density -ln z on (0, 1],
  hence CDF F(z) = z - z ln z, and P(|UV - 1/4| < a) = F(1/4 + a) - F(1/4 - a) = 0.1113 for a = 0.04.
"""

from __future__ import annotations

import math

import torch

from longrnn.errors import UsageError, check_positive, unknown
from longrnn.tasks.base import SquaredErrorLoss, Task
from longrnn.tasks.registry import register
from longrnn.tasks.streaming import noise, noise_keys, step_range

VARIANTS = ("standard", "rplrnn")
MIN_SEQ_LEN = {"standard": 2, "rplrnn": 10}
RPLRNN_FIRST_RANGE = 10  # the rPLRNN layout puts one marker in [0, 10)
TOLERANCE = 0.04  # |error| below this counts as correct (rPLRNN paper)
SOLVED_FRACTION = 0.05  # solved when the MSE falls to 5% of the baseline's


class MarkedPair(SquaredErrorLoss, Task):
    """Shared generator: two marked U[0, 1) values; subclasses say how to ``combine`` them."""

    input_size = 2
    output_size = 1
    readout = "last"
    main_metric = "mse"
    higher_is_better = False

    def __init__(
        self,
        seq_len: int = 100,
        variant: str = "standard",
        validation_size: int = 1000,
        test_size: int = 2000,
    ):
        super().__init__(validation_size=validation_size, test_size=test_size)
        if variant not in VARIANTS:
            raise unknown("variant", variant, VARIANTS)
        check_positive("seq_len", seq_len)
        if seq_len < MIN_SEQ_LEN[variant]:
            raise UsageError(
                f"seq_len must be >= {MIN_SEQ_LEN[variant]} for variant {variant!r}, got {seq_len!r}"
            )
        self.seq_len = seq_len
        self.variant = variant
        self.solved_at = SOLVED_FRACTION * self.expected_baseline()["mse"]

    mean: float  # E[combine(U, V)], the memoryless prediction

    def combine(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def memoryless_prediction(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 1), self.mean)

    def marker_positions(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """(batch, 2) long: the two marked steps of each sequence."""
        if self.variant == "standard":
            return self._standard_positions(batch_size, generator)
        return self._rplrnn_positions(batch_size, generator)

    def _standard_positions(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        half = self.seq_len // 2
        first = torch.randint(0, half, (batch_size,), generator=generator)
        second = torch.randint(half, self.seq_len, (batch_size,), generator=generator)
        return torch.stack([first, second], dim=1)

    def _rplrnn_positions(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        half = self.seq_len // 2
        first = torch.randint(0, RPLRNN_FIRST_RANGE, (batch_size,), generator=generator)
        second = torch.randint(0, half, (batch_size,), generator=generator)
        clash = first == second
        while clash.any():  # redraw both markers of every clashing sequence, as the original does
            n = int(clash.sum())
            first[clash] = torch.randint(0, RPLRNN_FIRST_RANGE, (n,), generator=generator)
            second[clash] = torch.randint(0, half, (n,), generator=generator)
            clash = first == second
        return torch.stack([first, second], dim=1)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        values = torch.rand(batch_size, self.seq_len, generator=generator)
        positions = self.marker_positions(batch_size, generator)
        marker = torch.zeros_like(values).scatter_(1, positions, 1.0)
        marked = values.gather(1, positions)
        x = torch.stack([values, marker], dim=-1)
        y = self.combine(marked[:, 0], marked[:, 1]).unsqueeze(1)
        return x, y

    def plan(self, batch_size: int, generator: torch.Generator) -> dict:
        """The marked steps (batch, 2), their values (batch, 2) and a noise key (batch,) for the other
        values (streaming.py); a streamed sequence is another draw than `sample`'s (see tasks/base.py)."""
        positions = self.marker_positions(batch_size, generator)
        return {"positions": positions, "marked": torch.rand(batch_size, 2, generator=generator),
                "noise": noise_keys(batch_size, generator)}

    def window(self, plan: dict, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        steps = step_range(start, stop, self.seq_len)
        values = noise(plan["noise"], start, stop, kind="uniform").squeeze(-1)
        at = plan["positions"].unsqueeze(1) == steps.view(1, -1, 1)  # (batch, steps, 2): marker j here
        marker = at.any(dim=2)
        marked = plan["marked"]
        values = torch.where(marker, (at * marked.unsqueeze(1)).sum(dim=2), values)
        return torch.stack([values, marker.float()], dim=-1), self.combine(marked[:, 0], marked[:, 1]).unsqueeze(1)

    @torch.no_grad()
    def metrics(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> dict[str, float]:
        error = (y_pred - y_true).abs()
        return {
            "mse": float(error.pow(2).mean()),
            "correct": float((error < TOLERANCE).float().mean()),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seq_len={self.seq_len}, variant={self.variant!r})"


@register("adding", "sum of two marked U[0,1) values (Hochreiter & Schmidhuber 1997; rPLRNN variant)")
class Adding(MarkedPair):
    mean = 1.0

    def combine(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return u + v

    def expected_baseline(self) -> dict[str, float]:
        a = TOLERANCE
        return {"mse": 1 / 6, "correct": 2 * a - a * a}


def _product_cdf(z: float) -> float:
    """CDF of UV for independent U, V ~ U[0, 1): the integral of -ln t from 0 to z."""
    return z - z * math.log(z) if z > 0 else 0.0


@register("multiplication", "product of two marked U[0,1) values (rPLRNN paper's variant of adding)")
class Multiplication(MarkedPair):
    mean = 0.25

    def combine(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return u * v

    def expected_baseline(self) -> dict[str, float]:
        a = TOLERANCE
        return {"mse": 7 / 144, "correct": _product_cdf(self.mean + a) - _product_cdf(self.mean - a)}
