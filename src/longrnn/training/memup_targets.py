"""MemUP's target selection: which steps k each prediction step t predicts, from the detector's uncertainty u.

The four selectors of the official code (griver/memup, ``memup/target_selector.py``), picked by two settings:

=============  ===================================================  ==========================================
               ``temperature = 0`` (``TopKSelector``)               ``temperature = τ > 0``
                                                                    (``TemperatureSamplingSelector``)
=============  ===================================================  ==========================================
``future``     the K steps k ≥ t with the highest u_k (the          Gumbel top-K of u_k / τ over k ≥ t: K steps
               official scripts' choice)                             sampled without replacement, P(k) ∝ exp(u_k/τ);
                                                                    the Gumbel noise is redrawn every
                                                                    ``resample_every`` prediction steps (official 20)
``global``     the K steps of the whole sequence with the highest   K steps of the whole sequence drawn with
               u_k, the same for every t                            replacement from softmax(u / τ), once per
                                                                    sequence, the same for every t
=============  ===================================================  ==========================================

Only scored steps (those with a target) are candidates. Where fewer than K remain, the free slots repeat
candidates drawn uniformly at random, as the official code pads. With ``future`` and τ = 0 the draws are
exactly those of `select_targets` (the trainer's default since 0.1).

Shapes: u and ``scored`` are (batch, time); prediction steps are (P,) long; a selection is ``(idx, valid)``,
both (batch, P, K): step indices, and False only where a sequence has no candidate at all.
"""

from __future__ import annotations

import torch

from longrnn.errors import UsageError, unknown

MIN_TEMPERATURE = 1e-6  # below it u / τ leaves float range: use 0, the top-K that τ → 0 tends to
SELECTIONS = {
    "future": "the K most uncertain steps k >= t, for each prediction step t (official TopKSelector)",
    "global": "the K most uncertain steps of the whole sequence, the same for every t",
}


def select_targets(
    scores: torch.Tensor,
    scored: torch.Tensor,
    steps: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
    positions: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """U_t = top-K_{k ≥ t} of the uncertainty, for each prediction step t (official ``TopKSelector``).

    scores (batch, time) float, scored (batch, time) bool (only scored steps can be targets), steps (P,)
    long. Returns ``(idx, valid)``, both (batch, P, K): the K scored steps k ≥ t with the highest scores
    (t itself included), best first; when fewer than K remain, the free slots repeat candidates drawn
    uniformly at random (as the official code pads). ``valid`` is False only where no candidate is left.
    With ``positions`` (batch, n) long, the n columns of scores and scored are candidates at those steps
    (a streamed batch's chunk and the best steps after it, training/memup_batch.py) and idx are columns.
    """
    batch, time = scores.shape
    if positions is None:
        positions = torch.arange(time, device=scores.device).unsqueeze(0)
    later = positions.to(scores.device).unsqueeze(1) >= steps.to(scores.device).view(1, -1, 1)  # (., P, time)
    candidate = scored.unsqueeze(1) & later  # (batch, P, time)
    masked = scores.unsqueeze(1).masked_fill(~candidate, float("-inf"))
    top = masked.topk(min(k, time), dim=-1).indices  # candidates first, best first
    n = candidate.sum(-1, keepdim=True)  # (batch, P, 1)
    slot = torch.arange(k, device=scores.device)
    draw = torch.rand(batch, len(steps), k, generator=generator).to(scores.device)
    rank = torch.where(slot < n, slot, (draw * n).long().clamp(max=n - 1)).clamp(min=0, max=top.shape[-1] - 1)
    return top.gather(-1, rank), (n > 0).expand(batch, len(steps), k)


def gumbel(shape, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard Gumbel noise -log(-log U), U ~ U(0, 1) (with the official code's 1e-20 guards)."""
    u = torch.rand(shape, generator=generator)
    return -torch.log(-torch.log(u + 1e-20) + 1e-20)


def sample_global(scores: torch.Tensor, scored: torch.Tensor, k: int, temperature: float,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """K steps per sequence drawn with replacement from softmax(u / τ) over its scored steps: (batch, K)
    indices and (batch, K) validity (False for a sequence without a scored step)."""
    logits = (scores.double() / temperature).nan_to_num(nan=0.0, posinf=1e300).masked_fill(~scored, float("-inf")).cpu()
    valid = scored.any(-1).cpu()
    logits[~valid] = 0.0  # any draw; marked invalid (a NaN score, from a diverged detector, draws like 0)
    probs = torch.softmax(logits, -1)
    idx = torch.multinomial(probs, k, replacement=True, generator=generator)
    return idx.to(scores.device), valid.unsqueeze(-1).expand(-1, k).to(scores.device)


class TargetSelector:
    """The targets of each prediction step, for the batch of sequences in hand (see the module docstring).

    ``start(scores, scored)`` takes a new batch (u (batch, time), with -inf or anything at unscored steps);
    ``select(steps)`` returns ``(idx, valid)`` (batch, P, K) for the next prediction steps of that batch,
    in order. Random draws come from ``generator``. A streamed batch shows a part of its steps at a time:
    ``positions`` (batch, n), the step of each column of scores and scored, given to ``start`` and to
    ``view`` when the part changes; idx are then columns (training/memup_batch.py).
    """

    def __init__(self, k: int, selection: str = "future", temperature: float = 0.0, resample_every: int = 20,
                 generator: torch.Generator | None = None):
        if selection not in SELECTIONS:
            raise unknown("memup_selection", selection, SELECTIONS)
        if not (temperature == 0 or temperature >= MIN_TEMPERATURE):
            raise UsageError(f"temperature must be 0 or at least {MIN_TEMPERATURE:g}, got {temperature!r}")
        self.k, self.selection, self.temperature = k, selection, temperature
        self.resample_every, self.generator = resample_every, generator
        self.scores = self.scored = self.positions = None
        self.fixed = None  # global selection: (idx, valid) (batch, 1, K), drawn once per batch
        self.made = 0  # prediction steps selected for so far in this batch
        self.noise_block, self.noise = -1, None  # Gumbel noise of block made // resample_every

    def start(self, scores: torch.Tensor, scored: torch.Tensor, positions: torch.Tensor | None = None) -> None:
        self.view(scores, scored, positions)
        self.made, self.noise_block, self.noise = 0, -1, None
        self.fixed = None
        if self.selection == "global":
            if self.temperature > 0:
                idx, valid = sample_global(scores, scored, self.k, self.temperature, self.generator)
            else:
                first = torch.zeros(1, dtype=torch.long)
                idx, valid = select_targets(scores, scored, first, self.k, self.generator, positions)
            self.fixed = (idx.view(len(idx), 1, -1), valid.reshape(len(idx), 1, -1))

    def view(self, scores: torch.Tensor, scored: torch.Tensor, positions: torch.Tensor | None = None) -> None:
        """The candidates in view from now on: all steps of the batch, or (``positions``) some of them."""
        self.scores, self.scored, self.positions = scores, scored, positions

    def select(self, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        count = len(steps)
        if self.fixed is not None:
            idx, valid = self.fixed
            chosen = idx.expand(-1, count, -1), valid.expand(-1, count, -1)
        elif self.temperature == 0:
            chosen = select_targets(self.scores, self.scored, steps, self.k, self.generator, self.positions)
        else:
            chosen = self._gumbel_top_k(steps)
        self.made += count
        return chosen

    def _gumbel_top_k(self, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-K of u/τ + G over k ≥ t, G redrawn at every ``resample_every``-th prediction step."""
        parts = []
        ordinals = torch.arange(self.made, self.made + len(steps))
        for block in (ordinals // self.resample_every).unique().tolist():
            if block != self.noise_block:
                self.noise_block, self.noise = block, gumbel(self.scores.shape, self.generator).to(self.scores.device)
            mine = steps[(ordinals // self.resample_every) == block]
            noisy = self.scores.double() / self.temperature + self.noise
            parts.append(select_targets(noisy, self.scored, mine, self.k, self.generator))
        return torch.cat([p[0] for p in parts], 1), torch.cat([p[1] for p in parts], 1)

    def state_dict(self) -> dict:
        return {"made": self.made, "noise_block": self.noise_block, "noise": self.noise, "fixed": self.fixed}

    def load_state_dict(self, state: dict, scores: torch.Tensor, scored: torch.Tensor,
                        positions: torch.Tensor | None = None) -> None:
        self.view(scores, scored, positions)
        self.made, self.noise_block = state["made"], state["noise_block"]
        self.noise, self.fixed = state["noise"], state["fixed"]
