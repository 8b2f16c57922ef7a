"""The trainer's side of warm-up (``--warmup``) and of VAA monitoring (``--vaa``).

Before the first training step, `warm_up_before_training` warms the model's recurrent layers up with
`longrnn.methods.warmup.warm_up` on input sequences drawn from the task's training distribution by a
generator of their own (seeded from the run's seed). The training batches, the global random state and
so the training run itself are therefore the same with and without warm-up: only the starting weights
differ. Training then starts with its own, fresh optimizer, as in the official code.

`measure` is the hard VAA of `longrnn.methods.warmup.measure_vaa` on the first ``vaa_samples`` validation
sequences, with one fixed generator: every measurement of a run uses the same prefix lengths and the
same constant input, so VAA over training compares like with like. `measure_on_training_batches` is the
official code's monitor beside it (``vaa_batches``): the mean over fresh random batches of training inputs.
"""

from __future__ import annotations

import math

import torch

from longrnn.methods.warmup import measure_vaa, warm_up
from longrnn.models import SequenceModel
from longrnn.runs.config import RunConfig
from longrnn.streams import stream
from longrnn.tasks import Task
from longrnn.training.evaluate import first_fixed_sequences, first_sequences


def recurrent_model(model) -> SequenceModel:
    """The `SequenceModel` whose layers warm-up and VAA act on (a MemUP model's memory)."""
    return getattr(model, "memory", model)


def measure(config: RunConfig, model, task: Task, device: torch.device) -> float | None:
    """The hard VAA of the model's recurrent stack on validation inputs (the same random draws each call);
    None where it is undefined because the states are not finite."""
    t = config.train
    inputs = first_fixed_sequences(task, "validation", t.vaa_samples).to(device)
    generator = stream(t.seed, "vaa")
    value = measure_vaa(recurrent_model(model), inputs, t.vaa_steps, t.warmup_eps, generator)
    return None if math.isnan(value) else value


def measure_on_training_batches(config: RunConfig, model, task: Task, device: torch.device, step: int) -> float | None:
    """The mean hard VAA over ``vaa_batches`` random batches of ``batch_size`` training input sequences, as
    the official code monitors it (``num_estimates_vaa`` = 10 batches after each epoch); None if none is
    finite. The batches and the measurement's own draws come from a stream of their own for each ``step``
    (never the training batches' stream), so a resumed run measures what the run left alone measured."""
    t = config.train
    generator = stream(t.seed, "vaa", 1, step)
    values = []
    for _ in range(t.vaa_batches):
        inputs, _ = task.sample(t.batch_size, generator)
        inputs = first_sequences(inputs, t.batch_size).to(device)  # sequences of different lengths: the shortest
        values.append(measure_vaa(recurrent_model(model), inputs, t.vaa_steps, t.warmup_eps, generator))
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else None


def warm_up_before_training(config: RunConfig, model, task: Task, device: torch.device, quiet: bool) -> dict:
    """Warm ``model`` up in place as ``config.train`` says; returns `longrnn.methods.warmup.warm_up`'s history.

    Draws ``warmup_batch_size × warmup_num_steps`` training input sequences, so that each warm-up step
    sees a fresh minibatch. A non-finite VAA* raises FloatingPointError (the trainer records a divergence).
    """
    t = config.train
    generator = stream(t.seed, "warmup")
    n = t.warmup_batch_size * max(1, t.warmup_num_steps)
    inputs, _ = task.sample(n, generator)
    return warm_up(
        recurrent_model(model),
        first_sequences(inputs, n).to(device),  # sequences of different lengths: cut to the shortest
        steps=t.warmup_num_steps,
        lr=t.warmup_lr,
        batch_size=t.warmup_batch_size,
        eps=t.warmup_eps,
        target=t.warmup_target,
        stabilization_increment=t.warmup_stabilization_increment,
        stabilization_max=t.warmup_stabilization_max,
        partial=t.warmup_partial,
        generator=generator,
        progress=not quiet,
    )
