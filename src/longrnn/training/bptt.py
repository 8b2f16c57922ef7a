"""Backpropagation through time, full and truncated.

Full BPTT differentiates the loss through every step of the sequence. Truncated BPTT (Williams &
Peng 1990) runs the sequence in chunks of ``k`` steps and cuts the gradient at each chunk boundary
(the state is carried forward, detached):

* readout "last": only the last chunk is differentiated; the chunks before it run without a graph,
  so memory is O(k) instead of O(T) and the loss sees the last ``k`` steps only.
* readout "all": every chunk is differentiated, but gradients stop at chunk boundaries; the outputs
  are concatenated and the task's loss is taken once, so any task loss works unchanged. Each chunk
  runs under activation checkpointing (``torch.utils.checkpoint``, non-reentrant): only its input
  state is kept, and its steps are recomputed when the backward reaches it, so memory holds one
  chunk's graph at a time plus the outputs — O(k) in the model's activations, at the price of a second
  forward pass. The gradient is the same as keeping every chunk's graph (tested). Under
  DistributedDataParallel the chunks keep their graphs, uncheckpointed (tests/test_ddp.py trains so).

Both return the loss with its graph; the caller calls ``backward``.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from longrnn.cells import detach_state

TRAINERS = {
    "bptt": "full backpropagation through time",
    "tbptt": "truncated BPTT: gradients cut every --tbptt-len steps, state carried forward",
    "teacher_forcing": ("DSR: sparse (--tf-interval) / generalised (--tf-alpha) teacher forcing, "
                        "BPTT through the window"),
    "memup": ("MemUP (training/memup.py): predict the most uncertain future outcomes from rollouts of "
              "--memup-rollout steps"),
}


def bptt_loss(model, task, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    y_pred, _ = model(x)
    return task.loss(y_pred, y)


def tbptt_loss(model, task, x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    chunks = x.split(k, dim=1)
    state = None
    if getattr(model, "module", model).readout == "last":  # (model may be DistributedDataParallel)
        with torch.no_grad():
            for chunk in chunks[:-1]:
                _, state = model(chunk, state)
        y_pred, _ = model(chunks[-1], state)
        return task.loss(y_pred, y)
    outputs = []
    for chunk in chunks:
        y_chunk, state = _run_chunk(model, chunk, state)
        outputs.append(y_chunk)
        state = [detach_state(s) for s in state]
    return task.loss(torch.cat(outputs, dim=1), y)


def _run_chunk(model, chunk: torch.Tensor, state):
    """``model(chunk, state)``, checkpointed; under DistributedDataParallel plainly (its forward must
    not run again inside the backward, where the recomputation would call it)."""
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return model(chunk, state)
    return checkpoint(model, chunk, state, use_reentrant=False)


def training_loss(train, model, task, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss of one training batch under the trainer that ``train`` (a TrainConfig) names."""
    if train.trainer == "bptt":
        return bptt_loss(model, task, x, y)
    if train.trainer == "tbptt":
        return tbptt_loss(model, task, x, y, train.tbptt_len)
    if train.trainer == "teacher_forcing":
        from longrnn.training.teacher_forcing import teacher_forcing_loss  # (it imports the DSR layer)

        return teacher_forcing_loss(model, task, x, y, train.tf_interval, train.tf_alpha)
    raise ValueError(f"unknown trainer {train.trainer!r}; allowed: {', '.join(TRAINERS)}")
