"""The PLRNN cell: its equation, the three initialisations, integrator units, gradients, learning."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from longrnn.cells import make_cell
from longrnn.errors import UsageError
from longrnn.models import SequenceModel
from longrnn.tasks import make_task


def run_cell(cell, x, state=None):
    state = cell.init_state(x.shape[0], dtype=x.dtype) if state is None else state
    outputs = []
    for xp in cell.project_input(x).unbind(1):
        out, state = cell.step(xp, state)
        outputs.append(out)
    return torch.stack(outputs, 1), state


def test_step_is_the_plrnn_equation_and_ignores_the_diagonal_of_w():
    torch.manual_seed(0)
    cell = make_cell("plrnn", 2, 3, init="plain")
    with torch.no_grad():
        cell.A.copy_(torch.tensor([0.5, -0.2, 0.9]))
        cell.W.copy_(torch.tensor([[7.0, 1.0, -2.0], [0.5, 7.0, 0.0], [0.0, 3.0, 7.0]]))
        cell.h.copy_(torch.tensor([0.1, 0.2, -0.3]))
        cell.C.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, -1.0]]))
    z = torch.tensor([[1.0, -2.0, 3.0]])
    s = torch.tensor([[0.5, 1.0]])
    relu = torch.tensor([1.0, 0.0, 3.0])
    expected = torch.tensor([
        0.5 * 1 + (1 * 0.0 - 2 * 3.0) + 0.1 + 0.5,
        -0.2 * -2 + 0.5 * 1.0 + 0.2 + 2.0,
        0.9 * 3 + 3.0 * 0.0 + -0.3 + (0.5 - 1.0),
    ])
    assert relu[1] == 0.0  # the W entries multiplying relu(z_2) = 0 drop out
    out, new = cell(s, z)
    torch.testing.assert_close(new[0], expected)
    torch.testing.assert_close(out, new)  # output "z": the readout sees z itself


def test_relu_output_option():
    torch.manual_seed(0)
    cell = make_cell("plrnn", 2, 4, output="relu")
    x = torch.randn(3, 5, 2)
    outputs, final = run_cell(cell, x)
    assert (outputs >= 0).all()
    torch.testing.assert_close(outputs[:, -1], torch.relu(final))


def test_paper_init_is_stable_with_zero_w_diagonal():
    torch.manual_seed(1)
    m = 40
    cell = make_cell("plrnn", 2, m, init="paper", initial_state="learned")
    assert not cell.W.diagonal().any()
    recurrent = torch.diag(cell.A) + cell.W
    assert torch.linalg.eigvals(recurrent.detach()).abs().max() <= 1.0
    assert ((cell.z0 >= 0) & (cell.z0 < 1)).all()
    # C's spread is the npRNN input scale, far below h's 1/sqrt(M).
    scale = math.sqrt(2) * math.exp(1.2 / m - 2.4) / math.sqrt(m)
    assert 0.7 * scale < float(cell.C.detach().std()) < 1.3 * scale
    assert 0.7 / math.sqrt(m) < float(cell.h.detach().std()) < 1.3 / math.sqrt(m)


def test_plain_init_bounds():
    torch.manual_seed(2)
    cell = make_cell("plrnn", 3, 16, init="plain")
    bound = 1 / math.sqrt(16)
    for p in (cell.A, cell.W, cell.h, cell.C):
        assert p.abs().max() <= bound and p.abs().max() > 0.5 * bound
    assert not cell.W.diagonal().any()


@pytest.mark.parametrize("m, fraction, expected", [(10, 0.5, 5), (7, 0.5, 3), (8, 1.0, 8), (8, 0.0, 0)])
def test_identity_init_makes_the_first_units_integrators(m, fraction, expected):
    torch.manual_seed(3)
    cell = make_cell("plrnn", 2, m, init="identity", integrators=fraction)
    assert cell.n_integrators == expected
    assert (cell.A[:expected] == 1).all() and not cell.W[:expected].any() and not cell.h[:expected].any()
    assert (cell.A[expected:] != 1).all() and (cell.h[expected:] != 0).all()
    assert (cell.C.abs().sum(1) > 0).all()  # the input weights stay as drawn, as in the paper's code


@settings(max_examples=15, deadline=None)
@given(m=st.integers(2, 8), steps=st.integers(1, 60), seed=st.integers(0, 10_000))
def test_integrator_units_sum_their_input(m, steps, seed):
    """A=1, W row 0, h=0: z_i,t = z_i,0 + sum_t (C s_t)_i, whatever the other units do."""
    torch.manual_seed(seed)
    cell = make_cell("plrnn", 2, m, init="identity", integrators=0.5, initial_state="learned").double()
    p = cell.n_integrators
    x = torch.randn(3, steps, 2, dtype=torch.float64)
    with torch.no_grad():
        outputs, _ = run_cell(cell, x)
        expected = cell.z0[:p] + torch.cumsum(x @ cell.C[:p].T, dim=1)
    torch.testing.assert_close(outputs[..., :p], expected)


def test_learned_initial_state_and_gradcheck():
    torch.manual_seed(4)
    model = SequenceModel("plrnn", 2, 4, 1, readout="all", initial_state="learned").double()
    cell = model.cells[0]
    assert not model.init_state(3)[0].sub(cell.z0).any()
    x = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: model(x)[0], (x,))
    model(x)[0].sum().backward()
    assert cell.z0.grad.abs().sum() > 0
    assert not cell.W.grad.diagonal().any()  # the masked diagonal takes no part in the step
    assert cell.W.grad.abs().sum() > 0


def test_gradcheck_parameters_float64():
    """The step loop equals a hand-written unroll; float64 gradcheck of that unroll in every parameter."""
    torch.manual_seed(5)
    cell = make_cell("plrnn", 2, 3, init="paper", initial_state="learned").double()
    x = torch.randn(2, 4, 2, dtype=torch.float64)
    names = ["A", "W", "h", "C", "z0"]

    params = tuple(getattr(cell, n).detach().clone().requires_grad_() for n in names)

    def unrolled(*params):
        values = dict(zip(names, params))
        z = values["z0"].expand(2, -1)
        w = values["W"] * (1 - torch.eye(3, dtype=torch.float64))
        for s in x.unbind(1):
            z = values["A"] * z + torch.relu(z) @ w.T + values["h"] + s @ values["C"].T
        return z

    with torch.no_grad():
        for n, p in zip(names, params):
            getattr(cell, n).copy_(p)
        reference, _ = run_cell(cell, x)
    torch.testing.assert_close(unrolled(*params), reference[:, -1])
    assert torch.autograd.gradcheck(unrolled, params)


def test_bad_options():
    with pytest.raises(UsageError, match="init 'eye'"):
        make_cell("plrnn", 1, 4, init="eye")
    with pytest.raises(UsageError, match="output 'x'"):
        make_cell("plrnn", 1, 4, output="x")
    with pytest.raises(UsageError, match="initial_state"):
        make_cell("plrnn", 1, 4, initial_state="random")
    with pytest.raises(UsageError, match=r"\[0, 1\], got 1.5"):
        make_cell("plrnn", 1, 4, init="identity", integrators=1.5)


def test_learns_the_adding_problem(one_thread):
    """A small smoke test: far below the memoryless baseline's MSE after a few hundred steps."""
    torch.manual_seed(0)
    task = make_task("adding", seq_len=12, variant="rplrnn", validation_size=256)
    model = SequenceModel("plrnn", 2, 16, 1, init="identity", integrators=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        x, y = task.sample(64, generator)
        loss = task.loss(model(x)[0], y)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        optimizer.step()
    x, y = task.validation_set()
    with torch.no_grad():
        mse = task.metrics(model(x)[0], y)["mse"]
    assert mse < 0.2 * task.expected_baseline()["mse"]


def test_rplrnn_experiment_builds_every_model():
    """Every variant of experiments/rplrnn.toml builds; the rPLRNN and the official code's L2PLRNNs carry a
    penalty (the manifold-attractor one, mean(x^4) on the regularised units)."""
    from pathlib import Path

    from longrnn.experiment.sweep import load_sweep
    from longrnn.methods.regularizers import model_penalty
    from longrnn.training.build import build_model, build_task

    sweep = load_sweep(Path(__file__).parent.parent / "experiments" / "rplrnn.toml")
    task = build_task(sweep.runs[0].config)
    regularised = []
    first = [r for r in sweep.runs if r.task_label == sweep.task_labels[0] and r.config.train.seed == 0]
    assert [r.variant_label for r in first] == [
        "rPLRNN", "iPLRNN", "PLRNN", "LSTM", "iRNN", "orthogonal RNN (modReLU, kept orthogonal)",
        "oRNN (ReLU, orthogonal init)", "RNN (ReLU)", "npRNN", "iRNN, official input init", "L2pPLRNN", "L2fPLRNN"]
    for run in first:
        model = build_model(run.config, task)
        assert model.hidden_size == 40 and run.config.train.clip == 3.0
        if model_penalty(model, run.config.train.reg, run.config.train.tau, run.config.train.reg_fraction) is not None:
            regularised.append(run.variant_label)
    assert regularised == ["rPLRNN", "L2pPLRNN", "L2fPLRNN"]
