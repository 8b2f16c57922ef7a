"""Tests of the warm-up paper's cells (brc, nbrc, mgu) and the double layer: equations, inits, gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck
from torch.func import functional_call

from learning import copy_first_losses
from longrnn.cells import make_cell
from longrnn.cells.double import DoubleCell
from longrnn.errors import UsageError
from longrnn.methods.diagnostics import gate_statistics
from longrnn.models import Recurrent, SequenceModel

NEW_CELLS = ("brc", "nbrc", "mgu")


def reference_step(name: str, cell, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The paper's equations written out from the named parameter blocks, independently of `step`."""
    H = cell.hidden_size
    W = cell.weight_ih
    if name == "mgu":
        U = cell.weight_hh
        f = torch.sigmoid(x @ W[:H].T + h @ U[:H].T + cell.bias[:H])
        candidate = torch.tanh(x @ W[H:].T + (f * h) @ U[H:].T + cell.bias[H:])
        return (1 - f) * h + f * candidate
    if name == "brc":
        m_c, m_a = cell.memory_c * h, cell.memory_a * h
    else:
        m_c, m_a = h @ cell.weight_hh[:H].T, h @ cell.weight_hh[H:].T
    c = torch.sigmoid(x @ W[:H].T + cell.bias[:H] + m_c)
    a = 1 + torch.tanh(x @ W[H : 2 * H].T + cell.bias[H : 2 * H] + m_a)
    return c * h + (1 - c) * torch.tanh(x @ W[2 * H :].T + cell.bias[2 * H :] + a * h)


@pytest.mark.parametrize("name", NEW_CELLS)
def test_step_follows_the_paper_equations_with_random_parameters(name):
    torch.manual_seed(0)
    cell = make_cell(name, 3, 5)
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_()
    x, h = torch.randn(4, 3), torch.randn(4, 5)
    out, state = cell(x, h)
    torch.testing.assert_close(out, reference_step(name, cell, x, h))
    assert state is out and out.shape == (4, 5)


@pytest.mark.parametrize("name", NEW_CELLS)
def test_float64_gradcheck_of_one_step(name):
    torch.manual_seed(1)
    cell = make_cell(name, 3, 4).double()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    names = [name for name, _ in cell.named_parameters()]
    weights = [p.detach().clone().requires_grad_() for p in cell.parameters()]

    def one_step(x, h, *weights):
        return functional_call(cell, dict(zip(names, weights)), (x, h))[0]

    assert gradcheck(one_step, (x, h, *weights))


def test_initialisation_of_the_warm_up_code():
    torch.manual_seed(2)
    brc, nbrc, mgu = (make_cell(n, 6, 40) for n in NEW_CELLS)
    assert torch.equal(brc.memory_c, torch.ones(40)) and torch.equal(brc.memory_a, torch.ones(40))
    for cell in (brc, nbrc, mgu):
        assert torch.equal(cell.bias, torch.zeros_like(cell.bias))
        bound = math.sqrt(6 / (40 + 6))  # Xavier-uniform of a (40, 6) block
        assert cell.weight_ih.abs().max() <= bound and cell.weight_ih.abs().max() > 0.8 * bound
    for cell in (nbrc, mgu):
        bound = math.sqrt(6 / 80)
        assert cell.weight_hh.abs().max() <= bound and cell.weight_hh.abs().max() > 0.8 * bound


@pytest.mark.parametrize("name", NEW_CELLS)
def test_keep_gate_values_are_gates_and_feed_the_diagnostics(name):
    torch.manual_seed(3)
    cell = make_cell(name, 2, 3)
    x, h = torch.randn(5, 2), torch.randn(5, 3)
    g = cell.forget_gate_values(cell.project_input(x), h)
    assert g.shape == (5, 3) and bool(((g > 0) & (g < 1)).all())
    model = SequenceModel(name, 2, 6, 1)
    stats = gate_statistics(model, torch.randn(3, 7, 2))
    assert 0 <= stats["gate_at_1"] <= 1 and stats["timescale_p50"] >= 1


def test_brc_units_have_two_attractors_at_initialisation():
    """With zero input, w_a = 1 gives a = 1 + tanh(h) > 1 for h > 0: a unit pushed up settles high (about
    0.92); one pushed down has a < 1 and decays towards 0. Two attractors, so the BRC is multistable at init."""
    cell = make_cell("brc", 1, 3)
    zero = torch.zeros(2, 1)
    h = torch.tensor([[0.8, 0.8, 0.8], [-0.8, -0.8, -0.8]])
    for _ in range(300):
        h, _ = cell(zero, h)
    assert bool((h[0] > 0.5).all()) and bool((h[1] <= 0).all() and (h[1] > -0.1).all())


def test_double_cell_equals_its_two_halves_run_apart():
    torch.manual_seed(4)
    first, second = make_cell("lstm", 3, 4), make_cell("lstm", 3, 4)
    double = DoubleCell(first, second)
    x = torch.randn(2, 9, 3)
    out, (h, c) = Recurrent(double, fused=False)(x)
    out1, (_, c1) = Recurrent(first, fused=False)(x)
    out2, (_, c2) = Recurrent(second, fused=False)(x)
    torch.testing.assert_close(out, torch.cat([out1, out2], -1))
    torch.testing.assert_close(c, torch.cat([c1, c2], -1))
    fused_out, _ = Recurrent(double, fused=True)(x)
    torch.testing.assert_close(fused_out, out)
    assert double.hidden_size == 8 and double.split_state((h, c))[1][0].shape == (2, 4)


def test_double_model_builds_half_width_cells_and_refuses_odd_sizes():
    model = SequenceModel("nbrc", 2, 8, 1, num_layers=2, double=True)
    assert all(isinstance(c, DoubleCell) and c.first.hidden_size == 4 for c in model.cells)
    assert model.cells[1].input_size == 8
    y, _ = model(torch.randn(3, 5, 2))
    assert y.shape == (3, 1)
    with pytest.raises(UsageError, match="even, got 7"):
        SequenceModel("gru", 2, 7, 1, double=True)


@pytest.mark.parametrize("name", NEW_CELLS)
def test_cell_learns_copy_first_on_a_short_sequence(name):
    before, after = copy_first_losses(lambda task: SequenceModel(name, task.input_size, 8, task.output_size))
    assert after < 0.5 * before
