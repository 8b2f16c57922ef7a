"""The spatial copy task: a pattern shown on a lattice must be reproduced after T blank steps.

Our task for the convolutional cells (Magnasco 2023 names no benchmark): the copy task of Arjovsky
et al. 2016 with a spatial pattern in place of a symbol string.

Lattice Λ of N sites (``lattice="8x8"``, ``"64"``, ...), delay T = ``seq_len``; the input has T + 2
steps and two channels laid out on the lattice, channel-major: x (batch, T + 2, 2·N) float.

* channel 0 (pattern): at step 0 the pattern as ±1 per site (+1 where the bit is 1), 0 afterwards;
* channel 1 (cue): 1 at every site at the last step (answer now), 0 before.

The pattern's bits are independent Bernoulli(``density``). The target y (batch, N) float is the
pattern; the model reads out at the last step, N logits (y_pred (batch, N)); the loss is the binary
cross-entropy with logits. Metrics: ``bce``, ``accuracy`` (fraction of sites right, a logit > 0 meaning
1) and ``pattern_accuracy`` (fraction of patterns with every site right). Solved at accuracy 0.99.

Noisy variant (``noise`` > 0): N(0, noise²) is added to the pattern channel at every step, the first
included, so the model must store a noisy pattern and ignore a stream of noise.

Baseline: at the last step a memoryless predictor sees the cue (and noise) only, which carry nothing
about the pattern; the best it can do is the constant logit ln(p / (1 - p)), p = density. Its BCE is
the entropy H(p) = -p ln p - (1 - p) ln(1 - p), its accuracy max(p, 1 - p) (at p = 1/2: 1/2, since a
logit of 0 reads as bit 0) and its pattern accuracy max(p, 1 - p)^N.

Memory: the fixed sets hold (size, T + 2, 2N) floats, hence the smaller default sizes; lower them
further for large lattices and long delays.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from longrnn.errors import UsageError, check_positive
from longrnn.functional.lattice import lattice_text, parse_lattice, sites
from longrnn.tasks.base import Task
from longrnn.tasks.registry import register

PATTERN, CUE = 0, 1
CHANNELS = 2


@register("spatial_copy", "reproduce a lattice pattern after seq_len blank steps (noise=... for the noisy variant)")
class SpatialCopy(Task):
    readout = "last"
    main_metric = "accuracy"
    higher_is_better = True
    solved_at = 0.99

    def __init__(
        self,
        seq_len: int = 100,
        lattice="8x8",
        density: float = 0.5,
        noise: float = 0.0,
        validation_size: int = 500,
        test_size: int = 1000,
    ):
        super().__init__(validation_size=validation_size, test_size=test_size)
        self.delay = check_positive("seq_len", seq_len)
        self.lattice = parse_lattice(lattice)
        self.sites = sites(self.lattice)
        if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0.0 < density < 1.0:
            raise UsageError(f"density must be a number in (0, 1), got {density!r}")
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or noise < 0:
            raise UsageError(f"noise must be a number >= 0, got {noise!r}")
        self.density, self.noise = float(density), float(noise)
        self.seq_len = seq_len + 2
        self.input_size = CHANNELS * self.sites
        self.output_size = self.sites

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        pattern = (torch.rand(batch_size, self.sites, generator=generator) < self.density).float()
        x = torch.zeros(batch_size, self.seq_len, CHANNELS, self.sites)
        x[:, 0, PATTERN] = 2 * pattern - 1
        x[:, -1, CUE] = 1.0
        if self.noise:
            x[:, :, PATTERN] += self.noise * torch.randn(batch_size, self.seq_len, self.sites, generator=generator)
        return x.reshape(batch_size, self.seq_len, self.input_size), pattern

    def loss(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(y_pred, y_true)

    def step_loss(self, y_hat: torch.Tensor, y_steps: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of each prediction, averaged over the sites (as `loss`)."""
        return F.binary_cross_entropy_with_logits(y_hat, y_steps, reduction="none").mean(dim=-1)

    @torch.no_grad()
    def metrics(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> dict[str, float]:
        right = (y_pred > 0).float() == y_true
        return {
            "bce": float(self.loss(y_pred, y_true)),
            "accuracy": float(right.float().mean()),
            "pattern_accuracy": float(right.all(dim=1).float().mean()),
        }

    def memoryless_prediction(self, x: torch.Tensor) -> torch.Tensor:
        """The constant logit ln(p / (1 - p)) at every site."""
        logit = math.log(self.density / (1 - self.density))
        return torch.full((x.shape[0], self.sites), logit)

    def expected_baseline(self) -> dict[str, float]:
        p = self.density
        entropy = -p * math.log(p) - (1 - p) * math.log(1 - p)
        best = max(p, 1 - p)
        return {"bce": entropy, "accuracy": best, "pattern_accuracy": best**self.sites}

    def __repr__(self) -> str:
        return (
            f"SpatialCopy(seq_len={self.delay}, lattice={lattice_text(self.lattice)!r}, density={self.density}, "
            f"noise={self.noise})"
        )
