"""Per-step targets and losses of every task (`step_targets`, `step_loss`), used by the memup trainer."""

from __future__ import annotations

import pytest
import torch

from longrnn.tasks import make_task

SMALL_SETS = {"validation_size": 16, "test_size": 16}
CASES = [
    ("adding", {"seq_len": 30}),
    ("multiplication", {"seq_len": 30}),
    ("copy", {"seq_len": 12}),
    ("copy", {"seq_len": 12, "variable_delay": True}),
    ("copy_first", {"seq_len": 25}),
    ("denoising", {"seq_len": 40}),
    ("digits", {"rows": True, "pad": 4}),
    ("scattered_copy", {"seq_len": 12}),
    ("tmaze", {"seq_len": 15}),
]
IDS = [f"{name}-{len(opts)}" for name, opts in CASES]


def per_step_prediction(task, batch: int) -> torch.Tensor:
    return torch.randn(batch, task.seq_len, task.output_size, generator=torch.Generator().manual_seed(3))


def as_model_output(task, y_hat: torch.Tensor) -> torch.Tensor:
    """What a model reading out as the task says would output, given a prediction at every step."""
    return y_hat if task.readout == "all" else y_hat[:, -1]


@pytest.mark.parametrize("name, options", CASES, ids=IDS)
def test_step_loss_on_the_scored_steps_is_the_task_loss(name, options):
    task = make_task(name, **options, **SMALL_SETS)
    _, y = task.sample(5, torch.Generator().manual_seed(0))
    y_steps, scored = task.step_targets(y)
    assert scored.shape == (5, task.seq_len) and scored.dtype == torch.bool and scored.any(dim=1).all()
    assert y_steps.shape[:2] == (5, task.seq_len)
    y_hat = per_step_prediction(task, 5)
    per_step = task.step_loss(y_hat, y_steps)
    assert per_step.shape == (5, task.seq_len)
    assert torch.allclose(per_step[scored].mean(), task.loss(as_model_output(task, y_hat), y), atol=1e-6)


@pytest.mark.parametrize("name, options", CASES, ids=IDS)
def test_step_loss_is_zero_for_a_perfect_step_prediction(name, options):
    task = make_task(name, **options, **SMALL_SETS)
    _, y = task.sample(4, torch.Generator().manual_seed(1))
    y_steps, scored = task.step_targets(y)
    if y_steps.dtype == torch.long:
        perfect = 50.0 * torch.nn.functional.one_hot(y_steps, task.output_size).float()
    else:
        perfect = y_steps.reshape(4, task.seq_len, -1).expand(-1, -1, task.output_size)
    assert task.step_loss(perfect, y_steps)[scored].max() < 1e-6


def test_which_steps_are_scored():
    adding = make_task("adding", seq_len=20)
    _, scored = adding.step_targets(adding.sample(3, torch.Generator())[1])
    assert scored[:, -1].all() and not scored[:, :-1].any()
    denoising = make_task("denoising", seq_len=40, n_values=5)
    _, scored = denoising.step_targets(denoising.sample(3, torch.Generator())[1])
    assert scored[:, -5:].all() and not scored[:, :-5].any()
    copy = make_task("copy", seq_len=10)
    _, scored = copy.step_targets(copy.sample(3, torch.Generator())[1])
    assert scored.all()  # blanks count in the copy loss, so they are targets too
