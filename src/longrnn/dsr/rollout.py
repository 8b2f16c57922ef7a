"""Running a sequence model as a dynamical system: forced rollouts, free generation, n-step prediction.

The model is used autoregressively: its input at step t is an observation u_t (batch, N) and its output
is the prediction x̂_{t+1} of the next one. This works for every registered cell (the forcing acts on
the input, not on a particular latent state), with any `SequenceModel` whose input and output sizes are N.

Teacher forcing mixes the data x_t into the input (Williams & Zipser 1989; sparse forcing after
Mikhaeil, Monfared & Durstewitz, NeurIPS 2022; generalised forcing after Hess et al., ICML 2023):

    u_0 = x_0,     u_t = a_t x_t + (1 − a_t) x̂_t,     a_t = 1 if t % interval == 0 else alpha

``interval = 1`` is classical teacher forcing (one-step-ahead), ``alpha = 0`` with ``interval = τ`` is
sparse teacher forcing (free running between forcing times), ``0 < alpha < 1`` is generalised teacher
forcing; gradients flow through the (1 − a_t) x̂_t part. Difference from the lab's code: they force the
first N *latent* units (identity TF) or the inverted observation model; here the observation enters
through the cell's input weights, which keeps the scheme cell-agnostic.

A driven system's external inputs s_t (stimuli, controls: known, not predicted) are given beside u_t at
every step, forced or free (``inputs``); the model's input size is then N + K.
"""

from __future__ import annotations

import torch

from longrnn.errors import UsageError, check_positive


def _one_step(model, u: torch.Tensor, state):
    y, state = model(u.unsqueeze(1), state)
    return (y if y.dim() == 2 else y[:, 0]), state


def _driven(u: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
    """The model's input: the observation (or prediction) u_t, followed by the external input s_t if any."""
    return u if s is None else torch.cat([u, s], dim=-1)


def forced_rollout(model, x: torch.Tensor, interval: int = 1, alpha: float = 0.0,
                   inputs: torch.Tensor | None = None) -> torch.Tensor:
    """Predictions (batch, T − 1, N) of x_1 … x_{T−1} for data x (batch, T, N), forced as above.
    ``inputs`` (batch, T − 1, K): external inputs s_t, given to the model beside u_t at every step."""
    check_positive("interval", interval)
    if not 0.0 <= alpha <= 1.0:
        raise UsageError(f"alpha must be in [0, 1], got {alpha!r}")
    drive = [None] * (x.shape[1] - 1) if inputs is None else inputs.unbind(1)
    state, prediction, outputs = None, None, []
    for t, (x_t, s_t) in enumerate(zip(x.unbind(1)[:-1], drive)):
        if t % interval == 0:
            u = x_t
        else:
            u = alpha * x_t + (1.0 - alpha) * prediction if alpha > 0 else prediction
        prediction, state = _one_step(model, _driven(u, s_t), state)
        outputs.append(prediction)
    return torch.stack(outputs, 1)


def generate(model, prefix: torch.Tensor, steps: int, inputs: torch.Tensor | None = None) -> torch.Tensor:
    """Run the model on the data ``prefix`` (batch, P, N), then freely for ``steps`` more steps.

    Returns the free-running part (batch, steps, N): x̂_P, x̂_{P+1}, …, each prediction fed back as
    the next input. ``inputs`` (batch, ≥ P + steps − 1, K): the external inputs s_0, s_1, … beside them.
    """
    check_positive("steps", steps)
    p = prefix.shape[1]
    if inputs is not None and inputs.shape[1] < p + steps - 1:
        raise UsageError(f"{steps} free steps after {p} data need {p + steps - 1} external inputs, got "
                         f"{inputs.shape[1]}")
    y, state = model(prefix if inputs is None else torch.cat([prefix, inputs[:, :p]], dim=-1))
    prediction = y[:, -1] if y.dim() == 3 else y
    outputs = [prediction]
    drive = [None] * (steps - 1) if inputs is None else inputs[:, p : p + steps - 1].unbind(1)
    for s_t in drive:
        prediction, state = _one_step(model, _driven(prediction, s_t), state)
        outputs.append(prediction)
    return torch.stack(outputs, 1)


@torch.no_grad()
def prediction_error(model, x: torch.Tensor, steps: int = 20, starts: int | None = None,
                     inputs: torch.Tensor | None = None) -> float:
    """PE(n): the mean squared error of n-step-ahead predictions along the trajectory x (batch, T, N).

    For every start t (or ``starts`` evenly spaced ones), the model is teacher-forced on x_0 … x_t and then
    runs freely; its n-th prediction is compared with x_{t+n}. Averaged over starts, batch and dimensions.
    ``inputs`` (batch, T, K): the external inputs beside the observations, forced and free alike.
    """
    check_positive("steps", steps)
    if x.shape[1] <= steps:
        raise UsageError(f"the trajectory has {x.shape[1]} steps; PE({steps}) needs more than {steps}")
    count = x.shape[1] - steps
    y, _, states = model.run(_driven(x, inputs)[:, :count], return_states=True)  # y[:, t] predicts x_{t+1}
    times = torch.arange(count) if starts is None else torch.linspace(0, count - 1, starts).long()

    def at_times(s: torch.Tensor) -> torch.Tensor:  # (batch, time, ...) -> (batch * len(times), ...)
        return s[:, times].reshape(-1, *s.shape[2:])

    state = [tuple(map(at_times, s)) if isinstance(s, tuple) else at_times(s) for s in states]
    prediction = at_times(y)
    for j in range(1, steps):
        prediction, state = _one_step(model, _driven(prediction, None if inputs is None else at_times(inputs[:, j:])),
                                      state)
    return float((prediction - at_times(x[:, steps:])).pow(2).mean())
