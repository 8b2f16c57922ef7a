"""Learning-rate schedules and optimizers, pinned to the values they must take (training/optim.py)."""

import math

import pytest
import torch

from longrnn.errors import UsageError
from longrnn.training.optim import make_optimizer, make_schedule, schedule_factor


@pytest.mark.parametrize(
    ("name", "step", "expected"),
    [
        ("constant", 0, 1.0), ("constant", 99, 1.0),
        ("cosine", 0, 1.0), ("cosine", 50, 0.5), ("cosine", 25, 0.5 * (1 + math.cos(math.pi / 4))),
        ("cosine", 100, 0.0), ("cosine", 150, 0.0),  # past the end it stays at 0
        ("step", 0, 1.0), ("step", 49, 1.0), ("step", 50, 0.1), ("step", 74, 0.1), ("step", 75, 0.01),
    ],
)
def test_schedule_values(name, step, expected):
    assert schedule_factor(name, step, 100) == pytest.approx(expected, abs=1e-15)


def test_the_learning_rate_warm_up_is_linear_then_the_schedule_runs_over_the_rest():
    assert [schedule_factor("cosine", s, 110, lr_warmup_steps=10) for s in range(10)] == [
        (s + 1) / 10 for s in range(10)]
    assert schedule_factor("cosine", 10, 110, lr_warmup_steps=10) == pytest.approx(1.0)
    assert schedule_factor("cosine", 60, 110, lr_warmup_steps=10) == pytest.approx(0.5)


def test_the_schedule_sets_the_optimizer_s_learning_rate_step_by_step():
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = make_optimizer("sgd", [weight], 0.2, momentum=0.0, weight_decay=0.0)
    schedule = make_schedule(optimizer, "cosine", 4)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    c = math.cos(math.pi / 4)
    assert rates == pytest.approx([0.2, 0.2 * 0.5 * (1 + c), 0.1, 0.2 * 0.5 * (1 - c)])


def test_sgd_takes_the_step_its_equation_says():
    weight = torch.nn.Parameter(torch.tensor([1.0]))
    optimizer = make_optimizer("sgd", [weight], 0.1, momentum=0.9, weight_decay=0.0)
    for _ in range(2):
        optimizer.zero_grad()
        (weight ** 2).sum().backward()
        optimizer.step()
    # v1 = 2, w1 = 1 - 0.2 = 0.8; v2 = 0.9 * 2 + 1.6 = 3.4, w2 = 0.8 - 0.34 = 0.46
    assert weight.item() == pytest.approx(0.46)


def test_unknown_names_are_refused():
    with pytest.raises(UsageError, match="unknown schedule 'linear'"):
        schedule_factor("linear", 0, 10)
    with pytest.raises(UsageError, match="unknown optimizer 'adamw'"):
        make_optimizer("adamw", [torch.nn.Parameter(torch.zeros(1))], 0.1, 0.9, 0.0)
