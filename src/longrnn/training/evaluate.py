"""Scoring a model on a task's fixed validation or test set."""

from __future__ import annotations

import torch


@torch.no_grad()
def predict(model, x: torch.Tensor, batch_size: int, device="cpu") -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        parts = [model(xb.to(device))[0].cpu() for xb in x.split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(parts)


def evaluate(model, task, split: str = "validation", batch_size: int = 500, device="cpu") -> dict:
    """Metrics (plus ``loss``) of ``model`` on the task's ``validation`` or ``test`` set."""
    x, y = task.validation_set() if split == "validation" else task.test_set()
    y_pred = predict(model, x, batch_size, device)
    metrics = {"loss": float(task.loss(y_pred, y))}
    metrics.update(task.metrics(y_pred, y))
    return metrics
