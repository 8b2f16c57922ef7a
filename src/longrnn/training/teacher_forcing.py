"""Teacher-forcing training for dynamical-systems reconstruction (``--trainer teacher_forcing``).

For a window w_0 … w_T (the task's x = w_0 … w_{T−1}, y = w_1 … w_T), the model runs autoregressively
and its input at step t mixes data and its own prediction (`longrnn.dsr.rollout.forced_rollout`):

    u_t = a_t w_t + (1 − a_t) x̂_t,   a_t = 1 every ``tf_interval`` steps (sparse TF), else ``tf_alpha``

The loss is the task's loss between the predictions x̂_1 … x̂_T and y, differentiated through the whole
window (BPTT through the free-running stretches). ``tf_interval = 1`` is classical teacher forcing.
Windows of different lengths come as a PackedSequence (`teacher_forcing_loss`).
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from longrnn.dsr.rollout import forced_rollout
from longrnn.errors import UsageError
from longrnn.models import zero_after_end


def check_task(task) -> None:
    """Teacher forcing needs a next-step prediction task (outputs in the inputs' space, at every step)."""
    if task.readout != "all" or task.input_size != task.output_size + getattr(task, "external_inputs", 0):
        raise UsageError(
            "--trainer teacher_forcing needs a next-step prediction task (lorenz63, bursting, hindmarsh_rose, "
            f"dysts, timeseries), got {task.name!r}"
        )


def teacher_forcing_loss(model, task, x: torch.Tensor | PackedSequence, y: torch.Tensor, interval: int,
                        alpha: float) -> torch.Tensor:
    """The task's loss of the forced predictions of y (batch, T, N) from x (batch, T, N), or from a
    PackedSequence of windows of different lengths: the rollout is causal, so the padded batch's
    predictions before each window's end are those of the window alone; after it they are zeros (the
    task's loss must ignore its padded targets)."""
    check_task(task)
    lengths = None
    if isinstance(x, PackedSequence):
        x, lengths = pad_packed_sequence(x, batch_first=True)
    n = task.output_size  # the observations; the columns after them are external inputs
    drive = x[..., n:] if x.shape[-1] > n else None
    predictions = forced_rollout(model, torch.cat([x[..., :n], x[:, -1:, :n]], dim=1), interval, alpha, drive)
    return task.loss(predictions if lengths is None else zero_after_end(predictions, lengths), y)
