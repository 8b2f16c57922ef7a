"""Optimizers and learning-rate schedules named in `TrainConfig`."""

from __future__ import annotations

import math

import torch

from longrnn.errors import unknown

OPTIMIZERS = {
    "adam": "Adam (Kingma & Ba 2015)",
    "rmsprop": "RMSprop (Tieleman & Hinton 2012)",
    "sgd": "SGD with momentum",
}
SCHEDULES = {
    "constant": "the same learning rate throughout",
    "cosine": "cosine decay to zero over the run (Loshchilov & Hutter 2017)",
    "step": "x0.1 at 50% and again at 75% of the run",
}


def make_optimizer(name: str, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
    """A torch optimiser by name (`OPTIMIZERS`; ``momentum`` is SGD's alone). Raises UsageError naming the
    allowed names for any other."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise unknown("optimizer", name, OPTIMIZERS)


def schedule_factor(name: str, step: int, total: int, lr_warmup_steps: int = 0) -> float:
    """The multiplier of the base learning rate at ``step`` (0-based) of ``total``."""
    if name not in SCHEDULES:
        raise unknown("schedule", name, SCHEDULES)
    if lr_warmup_steps > 0 and step < lr_warmup_steps:
        return (step + 1) / lr_warmup_steps
    progress = (step - lr_warmup_steps) / max(1, total - lr_warmup_steps)
    if name == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    if name == "step":
        return 0.1 ** ((progress >= 0.5) + (progress >= 0.75))
    return 1.0


def make_schedule(optimizer, name: str, total: int, lr_warmup_steps: int = 0):
    """A LambdaLR stepping ``optimizer``'s learning rate by `schedule_factor` over ``total`` steps (a linear
    warm-up over the first ``lr_warmup_steps``). Raises UsageError for a name not in `SCHEDULES`."""
    schedule_factor(name, 0, total, lr_warmup_steps)  # validates the name before anything runs
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: schedule_factor(name, step, total, lr_warmup_steps)
    )
