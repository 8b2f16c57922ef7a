"""Scoring a model on a task's fixed validation or test set, and batches of either kind of input: a
(batch, time, features) tensor or a `torch.nn.utils.rnn.PackedSequence` of sequences of different lengths."""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence


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
def predict(model, x, batch_size: int, device="cpu") -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        parts = [model(xb.to(device))[0].cpu() for xb in split_batches(x, batch_size)]
    finally:
        model.train(was_training)
    if isinstance(x, PackedSequence) and parts[0].dim() == 3:  # per-step outputs: each batch as long as its
        steps = int(x.batch_sizes.numel())                      # longest sequence; zeros up to the set's
        parts = [torch.nn.functional.pad(p, (0, 0, 0, steps - p.shape[1])) for p in parts]
    return torch.cat(parts)


def evaluate(model, task, split: str = "validation", batch_size: int = 500, device="cpu") -> dict:
    """Metrics (plus ``loss``) of ``model`` on the task's ``validation`` or ``test`` set."""
    x, y = task.validation_set() if split == "validation" else task.test_set()
    y_pred = predict(model, x, batch_size, device)
    metrics = {"loss": float(task.loss(y_pred, y))}
    metrics.update(task.metrics(y_pred, y))
    return metrics
