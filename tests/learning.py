"""A small learning check the cell tests share: validation loss before and after a short training."""

from __future__ import annotations

import torch

from longrnn.tasks import make_task


def copy_first_losses(model_for, steps: int = 60, lr: float = 3e-2) -> tuple[float, float]:
    """(validation loss before, after) ``steps`` Adam steps of ``model_for(task)`` on copy_first at T = 4
    (batches of 32 from their own stream; 200 validation sequences)."""
    torch.manual_seed(5)
    task = make_task("copy_first", seq_len=4, validation_size=200)
    model = model_for(task)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    x_val, y_val = task.validation_set()
    with torch.no_grad():
        before = task.loss(model(x_val)[0], y_val).item()
    for _ in range(steps):
        x, y = task.sample(32, generator)
        loss = task.loss(model(x)[0], y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = task.loss(model(x_val)[0], y_val).item()
    return before, after
