"""T-maze as a supervised sequence task: a hint at the start, a noisy corridor, the turn at the end.

After the T-Maze of Bakker (2002) in the "LNR" form of the AMRL paper (Beck et al. 2020) that MemUP uses
(official code ``griver/memup`` ``rl/envs/memory_len.py``, ``TMazeAMRL``; ../shared/research/memup.md
§2.4), with the reinforcement-learning part taken out: the agent always walks the corridor, and the model
is asked for the correct turn at the junction.

Input x (batch, T, 3) = [hint, junction, noise]:

* hint: ±1 at step 0 (−1: the goal is left, +1: right), 0 elsewhere;
* junction: 1 at the last step, 0 elsewhere;
* noise: ±1 uniformly at every step (``noise=False``: 0), independent of the goal.

Target y (batch,) long: 0 for left, 1 for right; the model reads out at the last step (2 logits) and is
trained with cross-entropy. Metrics ``ce`` and ``accuracy``; solved at accuracy 0.99. Unlike the RL
environment, the corridor length is fixed at T (the environment adds U{0..10} steps).

Baseline: the goal is a fair coin independent of everything after step 0, so a memoryless predictor can
do no better than 1/2 each way: CE ln 2, accuracy 1/2 (the memoryless prediction below always says left,
which on a finite set scores the share of left goals).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from longrnn.errors import UsageError, check_bool, check_positive
from longrnn.tasks.base import Task
from longrnn.tasks.registry import register


@register("tmaze", "turn where the hint at step 0 said, after a noisy corridor of seq_len steps (T-maze, LNR)")
class TMaze(Task):
    input_size = 3
    output_size = 2
    readout = "last"
    main_metric = "accuracy"
    higher_is_better = True
    solved_at = 0.99

    def __init__(self, seq_len: int = 100, noise: bool = True, validation_size: int = 1000, test_size: int = 2000):
        super().__init__(validation_size=validation_size, test_size=test_size)
        self.seq_len = check_positive("seq_len", seq_len)
        self.noise = check_bool("noise", noise)
        if seq_len < 2:
            raise UsageError(f"seq_len must be >= 2 (hint and junction are different steps), got {seq_len!r}")

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        goal = torch.randint(0, 2, (batch_size,), generator=generator)
        x = torch.zeros(batch_size, self.seq_len, self.input_size)
        x[:, 0, 0] = 2.0 * goal - 1.0
        x[:, -1, 1] = 1.0
        if self.noise:
            x[:, :, 2] = 2.0 * torch.randint(0, 2, (batch_size, self.seq_len), generator=generator) - 1.0
        return x, goal

    def loss(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(y_pred, y_true)

    def step_loss(self, y_hat: torch.Tensor, y_steps: torch.Tensor) -> torch.Tensor:
        per = F.cross_entropy(y_hat.reshape(-1, self.output_size), y_steps.reshape(-1), reduction="none")
        return per.reshape(y_steps.shape)

    @torch.no_grad()
    def metrics(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> dict[str, float]:
        accuracy = (y_pred.argmax(dim=-1) == y_true).float().mean()
        return {"ce": float(self.loss(y_pred, y_true)), "accuracy": float(accuracy)}

    def memoryless_prediction(self, x: torch.Tensor) -> torch.Tensor:
        """Equal logits (CE ln 2); the argmax of a tie is the first class, left."""
        return torch.zeros(x.shape[0], self.output_size)

    def expected_baseline(self) -> dict[str, float]:
        return {"ce": math.log(2), "accuracy": 0.5}

    def __repr__(self) -> str:
        return f"TMaze(seq_len={self.seq_len}, noise={self.noise})"
