"""MemUP's alternating schedule, as the official copy-task script runs it (griver/memup,
``examples/copy_task/train.py``; ../shared/research/memup.md §2.3):

0. pre-training, ``pretrain_steps`` steps: the memory is held fixed (at its initialisation) and the
   predictor learns y_t from m_t at every step of each rollout ("current-step" targets, f = 1);
1. then phases of ``phase_steps`` steps in turn: a memory phase, MemUP's own step (top-K targets, loss ×
   ``loss_weight``), in which only the memory's parameters are updated; a predictor phase, the step of
   0 with the memory held fixed; and so on.

The two kinds of step walk through their own sequences with their own carried states (the official
script's two samplers): `AlternatingMemUP` holds a `MemUP` for each, sharing model and detector. The
gradient is clipped over every parameter that received one (as the official code clips memory and
predictor together) and the fixed part's gradients are dropped before the optimizer step
(`drop_frozen_grads`), so one Adam over all parameters acts as the script's two Adams with equal learning
rates. The EMA detector counts the steps of both phases: the script's update once per epoch (a memory and
a predictor phase) with decay 0.97 is ``memup_ema_every = 2 × phase_steps``, ``memup_ema_decay = 0.97``.
"""

from __future__ import annotations

import torch

from longrnn.errors import unknown
from longrnn.training.memup import MemUP
from longrnn.training.memup_batch import ChunkScorer

# the official code's options added after the other memup_* keys: refused (not ignored) under another trainer
MEMUP_OFFICIAL_KEYS = ("memup_selection", "memup_temperature", "memup_resample_every", "memup_loss_weight",
                       "memup_schedule", "memup_pretrain_steps", "memup_phase_steps", "memup_eval_ema")
SCHEDULES = {
    "joint": "memory and predictor learn together at every step (the T-Maze script)",
    "alternating": "predictor pre-training, then memory and predictor phases in turn (the copy script)",
}


class _SharedDetector:
    """The predictor phase's detector: no scores (its only target is the current step), and its steps
    count for the shared detector's updates."""

    def __init__(self, detector):
        self.detector = detector

    def scores(self, x: torch.Tensor, y_steps: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        return torch.zeros(scored.shape, device=scored.device)

    def scorer(self) -> ChunkScorer:
        return ChunkScorer(None, None)

    def update(self, model, batch) -> None:
        self.detector.update(model, batch)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def steps_by_phase(steps: int, pretrain_steps: int, phase_steps: int) -> tuple[int, int]:
    """(memory steps, predictor steps) among the first ``steps`` optimisation steps of the schedule."""
    after = max(steps - pretrain_steps, 0)
    cycles, rest = divmod(after, 2 * phase_steps)
    memory = cycles * phase_steps + min(rest, phase_steps)
    return memory, steps - memory


class AlternatingMemUP:
    """``loss(generator)``, ``drop_frozen_grads()``, ``advance()`` like `MemUP`, switching phase by the
    steps taken (see the module docstring)."""

    def __init__(self, memory_phase: MemUP, predictor_phase: MemUP, pretrain_steps: int, phase_steps: int):
        self.memory_phase, self.predictor_phase = memory_phase, predictor_phase
        self.pretrain_steps, self.phase_steps = pretrain_steps, phase_steps
        self.model = memory_phase.model
        self.steps = 0  # optimisation steps taken, both phases

    def phase(self, step: int | None = None) -> str:
        """"predictor" or "memory": what step ``step`` (by default the next) updates."""
        step = self.steps if step is None else step
        before = steps_by_phase(step, self.pretrain_steps, self.phase_steps)[0]
        return "memory" if steps_by_phase(step + 1, self.pretrain_steps, self.phase_steps)[0] > before else "predictor"

    def _current(self) -> MemUP:
        return self.memory_phase if self.phase() == "memory" else self.predictor_phase

    def loss(self, generator: torch.Generator | None = None) -> torch.Tensor:
        learning = self.phase() == "memory"
        self.model.memory.requires_grad_(learning)  # the fixed memory costs no gradient
        return self._current().loss(generator)

    def drop_frozen_grads(self) -> None:
        """In a memory phase the predictor's gradients (clipped with the memory's) are not applied."""
        if self.phase() == "memory":
            for p in self.model.predictor.parameters():
                p.grad = None

    def evaluated_model(self):
        return self.memory_phase.evaluated_model()

    def advance(self) -> None:
        self._current().advance()
        self.steps += 1
        self.model.memory.requires_grad_(True)

    @property
    def detector(self):
        return self.memory_phase.detector

    def state_dict(self) -> dict:
        return {"memory_phase": self.memory_phase.state_dict(), "predictor_phase": self.predictor_phase.state_dict(),
                "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.memory_phase.load_state_dict(state["memory_phase"])
        self.predictor_phase.load_state_dict(state["predictor_phase"])
        self.steps = state["steps"]


def build_memup(model, task, t, device="cpu", curriculum=None) -> MemUP | AlternatingMemUP:
    """The MemUP trainer the TrainConfig ``t`` asks for: `MemUP` (schedule "joint") or `AlternatingMemUP`."""
    memory_phase = MemUP.from_config(model, task, t, device, curriculum)
    if t.memup_schedule == "joint":
        return memory_phase
    shared = _SharedDetector(memory_phase.detector)
    predictor_phase = MemUP(model, task, t.batch_size, t.memup_rollout, targets=0, predict_every=1,
                            current_step=True, detector=shared, seed=t.seed, device=device, curriculum=curriculum)
    return AlternatingMemUP(memory_phase, predictor_phase, t.memup_pretrain_steps, t.memup_phase_steps)


def check_schedule(t) -> None:
    """A UsageError for an unknown schedule (settings it would ignore: the trainer's check of every key)."""
    if t.memup_schedule not in SCHEDULES:
        raise unknown("memup_schedule", t.memup_schedule, SCHEDULES)
