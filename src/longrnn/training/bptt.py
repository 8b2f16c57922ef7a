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

Sequences of different lengths (a `PackedSequence` batch) are cut as each would be alone: chunks of k
steps from its own start; a sequence that has ended leaves the batch, and with readout "last" its
output is read at its own last step, differentiated through its own last chunk (`tbptt_loss`).

Both return the loss with its graph; the caller calls ``backward``.

Sequences too long to hold (`Task.streams_batch`, tasks/base.py) are trained by `streamed_tbptt_backward`
instead: each chunk is built from the task's plan when its turn comes, run from the carried state and
differentiated at once (it calls ``backward`` itself, weighting each chunk's loss by its share of the
steps), so memory holds one chunk whatever the length; the gradient is `tbptt_loss`'s (tested).
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence
from torch.utils.checkpoint import checkpoint

from longrnn.cells import detach_state, map_state

TRAINERS = {
    "bptt": "full backpropagation through time",
    "tbptt": "truncated BPTT: gradients cut every --tbptt-len steps, state carried forward",
    "teacher_forcing": ("DSR: sparse (--tf-interval) / generalised (--tf-alpha) teacher forcing, "
                        "BPTT through the window"),
    "memup": ("MemUP (training/memup.py): predict the most uncertain future outcomes from rollouts of "
              "--memup-rollout steps"),
}


def bptt_loss(model, task, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Full backpropagation through time: the task's loss of the model run over the whole batch x."""
    y_pred, _ = model(x)
    return task.loss(y_pred, y)


def tbptt_loss(model, task, x: torch.Tensor | PackedSequence, y: torch.Tensor, k: int) -> torch.Tensor:
    """Truncated BPTT with chunks of ``k`` steps, the state carried and detached between them (Williams &
    Peng 1990): readout "all" scores every chunk's outputs; readout "last" runs all chunks but the last
    without a graph and differentiates the last one."""
    if isinstance(x, PackedSequence):
        return _tbptt_variable_length(model, task, *pad_packed_sequence(x, batch_first=True), y, k)
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


def streamed_tbptt_backward(model, task, plan: dict, k: int, device="cpu") -> torch.Tensor:
    """Truncated BPTT over the sequences of ``plan`` (`Task.plan`), built ``k`` steps at a time: readout
    "all": every chunk's loss (the task's, a mean over its steps) times its share of the steps, with
    ``backward`` called per chunk; readout "last": the chunks before the last run without a graph, the
    last one is differentiated. Gradients accumulate in the parameters' ``.grad``; returns the loss of the
    whole sequences, detached."""
    steps, state, total = task.seq_len, None, torch.zeros(())
    for start in range(0, steps, k):
        stop = min(start + k, steps)
        x, y = task.window(plan, start, stop)
        last = stop == steps
        if task.readout == "last" and not last:
            with torch.no_grad():
                _, state = model(x.to(device), state)
            continue
        y_pred, state = model(x.to(device), state)
        weight = 1.0 if task.readout == "last" else (stop - start) / steps
        loss = task.loss(y_pred, y.to(device)) * weight
        loss.backward()
        total = total + loss.detach().cpu()
        state = [detach_state(s) for s in state]
    return total


def _tbptt_variable_length(model, task, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor, k: int):
    """Truncated BPTT over a padded batch whose sequences end at ``lengths``: the chunks are those of each
    sequence run alone (k steps from its start, the last one shorter), and a chunk runs only the
    sequences still going, so no sequence reads padding or another's length. Readout "last": each
    sequence's output at its own last step, differentiated through its own last chunk only (the chunks
    that end no sequence run without a graph); readout "all": every chunk differentiated, zeros after
    each sequence's end."""
    readout_last = getattr(model, "module", model).readout == "last"
    running, state = torch.arange(len(x)), None
    outputs = [None] * len(x) if readout_last else []
    for start in range(0, x.shape[1], k):
        going = lengths[running] > start
        running, state = running[going], None if state is None else _select(state, going)
        steps = (lengths[running] - start).clamp(max=k)
        chunk = x[running.to(x.device), start : start + k]
        if readout_last:
            ends = lengths[running] <= start + k
            with torch.set_grad_enabled(torch.is_grad_enabled() and bool(ends.any())):
                y_chunk, state = model(chunk, state, lengths=steps)
            for row, i in zip(ends.nonzero().flatten().tolist(), running[ends].tolist()):
                outputs[i] = y_chunk[row]
        else:
            y_chunk, state = _run_chunk(model, chunk, state, steps)
            outputs.append(torch.zeros(len(x), *y_chunk.shape[1:], dtype=y_chunk.dtype, device=y_chunk.device)
                           .index_put((running.to(y_chunk.device),), y_chunk))
        state = [detach_state(s) for s in state]
    return task.loss(torch.stack(outputs) if readout_last else torch.cat(outputs, dim=1), y)


def _select(state: list, rows: torch.Tensor) -> list:
    """The layers' states of the batch rows where ``rows`` (a bool mask) is true."""
    return [map_state(lambda s: s[rows.to(s.device)], layer) for layer in state]


def _run_chunk(model, chunk: torch.Tensor, state, lengths: torch.Tensor | None = None):
    """``model(chunk, state, lengths=lengths)``, checkpointed; under DistributedDataParallel plainly (its
    forward must not run again inside the backward, where the recomputation would call it)."""
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return model(chunk, state, lengths=lengths)
    return checkpoint(model, chunk, state, lengths, use_reentrant=False)


def batch_loss(train, model, task, generator: torch.Generator, device="cpu", streaming: bool = True) -> torch.Tensor:
    """Draw the next training batch from ``task`` with ``generator`` and return its loss under the trainer
    ``train`` names. A truncated-BPTT batch too long to hold (`Task.streams_batch`; with ``streaming``) is
    drawn as a plan and trained chunk by chunk: its gradient is then already in ``.grad`` and the loss
    returned is detached; otherwise the loss keeps its graph for the caller's ``backward``."""
    if streaming and train.trainer == "tbptt" and task.streams_batch(train.batch_size):
        return streamed_tbptt_backward(model, task, task.plan(train.batch_size, generator), train.tbptt_len, device)
    x, y = task.sample(train.batch_size, generator)
    return training_loss(train, model, task, x.to(device), y.to(device))


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
