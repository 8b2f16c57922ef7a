"""Memoryless predictors fitted on a training part: models of the last step's input alone.

A task's memoryless baseline must be the best predictor *without history*, not merely the class prior:
where the last input carries information about the target (the last row of a digit, the last sample of a
recording), a model of it alone is the bar a recurrent network has to clear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

L2 = 1e-4  # ridge on the weights (not the bias): a unique optimum even for collinear inputs


def fit_last_input_classifier(inputs: torch.Tensor, labels: torch.Tensor,
                              log_prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression on ``inputs`` (N, F) for ``labels`` (N,) in 0..C-1: ``(weight (F, C),
    bias (C,))`` minimising cross-entropy + 1e-4 ||weight||², by L-BFGS in float64 from the class prior
    (weight 0, bias ``log_prior`` (C,)), so with uninformative inputs it stays the prior."""
    inputs = inputs.double()
    weight = torch.zeros(inputs.shape[1], len(log_prior), dtype=torch.float64, requires_grad=True)
    bias = log_prior.double().clone().requires_grad_()
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=200, line_search_fn="strong_wolfe")

    def objective():
        optimizer.zero_grad()
        loss = F.cross_entropy(inputs @ weight + bias, labels) + L2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(objective)
    return weight.detach(), bias.detach()


def fit_last_input_regression(inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squares of ``targets`` (N, C) on ``inputs`` (N, F) with an intercept and the same small ridge:
    ``(weight (F, C), bias (C,))`` in float64, in closed form."""
    x, y = inputs.double(), targets.double()
    mean_x, mean_y = x.mean(0), y.mean(0)
    xc, yc = x - mean_x, y - mean_y
    gram = xc.T @ xc + L2 * len(x) * torch.eye(x.shape[1], dtype=torch.float64)
    weight = torch.linalg.solve(gram, xc.T @ yc)
    return weight, mean_y - mean_x @ weight
