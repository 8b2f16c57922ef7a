"""Scoring a model on a task's fixed validation or test set, and batches of either kind of input: a
(batch, time, features) tensor or a `torch.nn.utils.rnn.PackedSequence` of sequences of different lengths.

A fixed set too large to hold (`Task.streamed`, tasks/base.py) is scored by `evaluate_streaming`: each
batch of sequences is built and run ``chunk_len`` steps at a time from the task's plan, the state carried
from chunk to chunk, and the metrics accumulated, so memory depends on the batch and the chunk, not on
the length (tests/test_streaming.py counts the bytes). On the copy tasks it gives the metrics of
`evaluate` on the same sequences.
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from longrnn.console import progress
from longrnn.tasks.streaming import NOISE_BLOCK, plan_rows, plan_size

CHUNK_LEN = NOISE_BLOCK  # steps run at once when a set is streamed (a multiple of the noise blocks)


def split_batches(x, size: int) -> list:
    """``x`` in batches of ``size`` sequences, in order (a PackedSequence: each batch packed again)."""
    if not isinstance(x, PackedSequence):
        return list(x.split(size))
    padded, lengths = pad_packed_sequence(x, batch_first=True)
    return [pack_padded_sequence(padded[i : i + size, : int(lengths[i : i + size].max())], lengths[i : i + size],
                                 batch_first=True, enforce_sorted=False) for i in range(0, len(lengths), size)]


def first_sequences(x, n: int) -> torch.Tensor:
    """The first ``n`` sequences of ``x`` as a plain (n, T, features) tensor of real steps: from a
    PackedSequence, cut to the shortest of them (inputs for warm-up, VAA and gate statistics)."""
    if not isinstance(x, PackedSequence):
        return x[:n]
    padded, lengths = pad_packed_sequence(x, batch_first=True)
    return padded[:n, : int(lengths[:n].min())]


@torch.no_grad()
def predict(model, x, batch_size: int, device="cpu", chunk_len: int | None = None) -> torch.Tensor:
    """The model's predictions for ``x``, ``batch_size`` sequences at a time; a tensor batch longer than
    ``chunk_len`` steps runs a chunk at a time with the state carried (`predict_chunks`), so the model's
    per-step memory is that of a chunk (None: whole sequences)."""
    was_training = model.training
    model.eval()
    try:
        parts = [predict_chunks(model, xb, device, chunk_len)
                 if chunk_len is not None and not isinstance(xb, PackedSequence) and xb.shape[1] > chunk_len
                 else model(xb.to(device))[0].cpu() for xb in split_batches(x, batch_size)]
    finally:
        model.train(was_training)
    if isinstance(x, PackedSequence) and parts[0].dim() == 3:  # per-step outputs: each batch as long as its
        steps = int(x.batch_sizes.numel())                      # longest sequence; zeros up to the set's
        parts = [torch.nn.functional.pad(p, (0, 0, 0, steps - p.shape[1])) for p in parts]
    return torch.cat(parts)


def predict_chunks(model, x: torch.Tensor, device, chunk_len: int) -> torch.Tensor:
    """``model(x)[0]`` for a (batch, time, features) tensor, computed ``chunk_len`` steps at a time
    (`forward_chunk`): per-step outputs concatenated, or the last step's."""
    carry, outputs = None, []
    for part in x.split(chunk_len, dim=1):
        y, carry = forward_chunk(model, part.to(device), carry)
        outputs.append(y.cpu())
    return torch.cat(outputs, dim=1) if outputs[0].dim() == 3 else outputs[-1]


def first_fixed_sequences(task, split: str, n: int, steps: int | None = None) -> torch.Tensor:
    """The inputs of the first ``n`` sequences of a fixed set, as `first_sequences` cuts them, and their
    first ``steps`` steps only (None: all); of a streamed set only those are built."""
    if task.streamed(split):
        stop = task.seq_len if steps is None else min(steps, task.seq_len)
        return task.window(plan_rows(task.fixed_plan(split), slice(0, n)), 0, stop)[0]
    x = first_sequences(task.validation_set()[0] if split == "validation" else task.test_set()[0], n)
    return x if steps is None else x[:, :steps]


def evaluate(model, task, split: str = "validation", batch_size: int = 500, device="cpu",
             chunk_len: int = CHUNK_LEN, quiet: bool = True) -> dict:
    """Metrics (plus ``loss``) of ``model`` on the task's ``validation`` or ``test`` set, sequences longer
    than ``chunk_len`` run a chunk at a time; a streamed set (`Task.streamed`) through `evaluate_streaming`
    (a progress bar unless ``quiet``)."""
    if task.streamed(split):
        return evaluate_streaming(model, task, task.fixed_plan(split), batch_size, device, chunk_len,
                                  desc=None if quiet else f"{split} T={task.seq_len}")
    x, y = task.validation_set() if split == "validation" else task.test_set()
    y_pred = predict(model, x, batch_size, device, chunk_len)
    metrics = {"loss": float(task.loss(y_pred, y))}
    metrics.update(task.metrics(y_pred, y))
    return metrics


def forward_chunk(model, x: torch.Tensor, carry):
    """One chunk of longer sequences: ``(y, carry)``; the model's own ``forward_chunk`` where it has one
    (a MemUP model carries its predictor's input window too), else ``model(x, carry)``."""
    step = getattr(model, "forward_chunk", None)
    return step(x, carry) if step is not None else model(x, carry)


@torch.no_grad()
def evaluate_streaming(model, task, plan: dict, batch_size: int = 500, device="cpu", chunk_len: int = CHUNK_LEN,
                       desc: str | None = None) -> dict:
    """Metrics (plus ``loss``) of ``model`` on the sequences of ``plan`` (`Task.plan`), ``batch_size``
    sequences at a time, each run ``chunk_len`` steps at a time with the state carried.

    Readout "all": every window's ``task.metric_sums``, divided by their counts at the end; readout
    "last": the last window's predictions, scored once by ``task.metrics``. ``desc``:
    a progress bar over steps with this label (None: none). Memory: a batch's chunk of inputs, outputs
    and targets, and the model's state, whatever ``task.seq_len``.
    """
    was_training = model.training
    model.eval()
    size, steps = plan_size(plan), task.seq_len
    bar = progress(size * steps, desc, disable=desc is None)
    sums: dict[str, list[float]] = {}
    finals, targets = [], []
    try:
        for first in range(0, size, batch_size):
            rows, carry = plan_rows(plan, slice(first, first + batch_size)), None
            for start in range(0, steps, chunk_len):
                x, y = task.window(rows, start, min(start + chunk_len, steps))
                y_pred, carry = forward_chunk(model, x.to(device), carry)
                if task.readout == "all":
                    _add(sums, task.metric_sums(y_pred.cpu(), y))
                bar.update(x.shape[0] * x.shape[1])
            bar.set_postfix(sequences=f"{min(first + batch_size, size)}/{size}")
            if task.readout == "last":
                finals.append(y_pred.cpu())
                targets.append(y)
    finally:
        bar.close()
        model.train(was_training)
    if task.readout == "last":
        y_pred, y = torch.cat(finals), torch.cat(targets)
        return {"loss": float(task.loss(y_pred, y)), **task.metrics(y_pred, y)}
    return {"loss": _mean(sums, "loss"), **{name: _mean(sums, name) for name in sums if name != "loss"}}


def _add(sums: dict, parts: dict) -> None:
    for name, (total, count) in parts.items():
        held = sums.setdefault(name, [0.0, 0])
        held[0] += total
        held[1] += count


def _mean(sums: dict, name: str) -> float:
    total, count = sums[name]
    return total / count if count else float("nan")
