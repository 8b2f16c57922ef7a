"""MemUP's uncertainty detectors d(y_k | ·): which future outcomes are surprising enough to predict.

Sorokin et al., "Explain My Surprise", NeurIPS 2022 (arXiv 2207.13649). Two detectors, one interface —
``scores(x, y_steps, scored) -> u`` (batch, time) with -inf where nothing is scored, ``scorer()`` for a
batch streamed chunk by chunk (`longrnn.training.memup_batch.ChunkScorer`), ``update(model, batch)`` after
each optimisation step, and ``state_dict``/``load_state_dict`` for checkpoints.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from longrnn.training.memup_batch import ChunkScorer, HeldBatch, chunk_windows, input_windows
from longrnn.training.memup_model import MemUPModel

DETECTORS = {
    "ema": "per-step loss of an EMA copy of memory + predictor (the official code's detector)",
    "local": "per-step loss of a memoryless model of the input window, trained online",
}


# --- uncertainty detectors ------------------------------------------------------------------------
class EMADetector:
    """u_k = ℓ(f_φ̄(m̄_k, x_k), y_k): the per-step loss of an EMA copy (θ̄, φ̄) of memory and predictor.

    Official ``PredictionErrorBasedDetector`` with ``accumulate``: every ``every`` steps
    θ̄ ← λ θ̄ + (1 - λ) θ (λ = ``decay``). Not memoryless: once the memory has learned a dependency, its
    target stops being surprising and selection moves to other targets.
    """

    def __init__(self, model: MemUPModel, task, decay: float = 0.995, every: int = 1):
        self.task, self.decay, self.every = task, decay, every
        self.ema = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def scores(self, x: torch.Tensor, y_steps: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        y_hat, _ = self.ema.step_predictions(x)
        return self.task.step_loss(y_hat, y_steps).masked_fill(~scored, float("-inf"))

    def scorer(self) -> ChunkScorer:
        """A copy of the EMA model as it is now, scoring a streamed batch chunk by chunk."""
        return ChunkScorer(copy.deepcopy(self.ema), self.task)

    @torch.no_grad()
    def update(self, model: MemUPModel, batch) -> None:
        self.updates += 1
        if self.updates % self.every:
            return
        for avg, new in zip(self.ema.parameters(), model.parameters()):
            avg.lerp_(new, 1.0 - self.decay)
        for avg, new in zip(self.ema.buffers(), model.buffers()):
            avg.copy_(new)

    def state_dict(self) -> dict:
        return {"ema": self.ema.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.ema.load_state_dict(state["ema"])
        self.updates = state["updates"]


class LocalDetector:
    """u_k = ℓ(g_ψ(x_{k-w+1..k}), y_k): a memoryless MLP of the input window, one Adam step per update.

    The paper's d_ψ(y_k | x_k) read literally: it estimates how unpredictable y_k is from local input
    alone, and never changes its mind once the memory learns a target. Each update fits it on ``samples``
    scored (sequence, step) pairs of the batch in hand.
    """

    def __init__(self, task, input_size: int, output_size: int, hidden: int, context_len: int,
                 lr: float = 1e-3, samples: int = 1024, generator: torch.Generator | None = None):
        self.task, self.context_len, self.samples, self.generator = task, context_len, samples, generator
        self.net = nn.Sequential(
            nn.Flatten(-2), nn.Linear(input_size * context_len, hidden), nn.ReLU(), nn.Linear(hidden, output_size)
        )
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)

    def to(self, device, dtype=None) -> LocalDetector:
        self.net.to(device=device, dtype=dtype)
        return self

    @torch.no_grad()
    def scores(self, x: torch.Tensor, y_steps: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        u = self.task.step_loss(self.net(input_windows(x, self.context_len)), y_steps)
        return u.masked_fill(~scored, float("-inf"))

    def scorer(self) -> ChunkScorer:
        """A copy of the window model as it is now, scoring a streamed batch chunk by chunk."""
        return ChunkScorer(WindowModel(copy.deepcopy(self.net), self.context_len), self.task)

    def update(self, model: MemUPModel, batch) -> None:
        """One Adam step on ``samples`` scored pairs of ``batch``: a `HeldBatch`, a `StreamedBatch` (the
        pairs in view: its chunk in hand and the suffix top-K after it), or (x, y_steps, scored)."""
        if isinstance(batch, tuple):
            batch = HeldBatch(*batch, None)
        drawn = batch.detector_samples(self.samples, self.generator, self.context_len)
        if drawn is None:  # nothing scored in view
            return
        windows, y = drawn
        loss = self.task.step_loss(self.net(windows), y).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def state_dict(self) -> dict:
        state = {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}
        if self.generator is not None:  # which (sequence, step) pairs the next updates fit on
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.generator is not None and "generator" in state:  # checkpoints before 0.2.0 lack it
            self.generator.set_state(state["generator"])


class WindowModel(nn.Module):
    """A net of the input window (`LocalDetector`'s) read chunk by chunk: ``predict_chunk(x, tail)``."""

    def __init__(self, net: nn.Module, context_len: int):
        super().__init__()
        self.net, self.context_len = net, context_len

    def predict_chunk(self, x: torch.Tensor, tail=None):
        tail = tail if tail is not None else x.new_zeros(x.shape[0], self.context_len - 1, x.shape[2])
        windows, tail = chunk_windows(x, tail, self.context_len)
        return self.net(windows), tail
