"""The rPLRNN benchmark code's other models (DurstewitzLab/reg-PLRNN): the PLRNN inits l2 and orthogonal
and the W entries the inits zero (reg_scheme), the Elman cell's orthogonal and npRNN inits, the l2, l4 and
orthogonal penalties, and a readout without bias."""

import math

import pytest
import torch

from longrnn.cells import make_cell
from longrnn.cells.init import np_input_scale
from longrnn.errors import UsageError
from longrnn.methods.regularizers import model_penalty
from longrnn.models import SequenceModel
from longrnn.runs.config import RunConfig, apply_overrides
from longrnn.training import train
from longrnn.training.build import build_model, build_task


@pytest.mark.parametrize(("init", "a_value"), [("identity", 1.0), ("l2", 0.0)])
@pytest.mark.parametrize(("scheme", "zeroed"), [("rows", (slice(0, 3), slice(None))),
                                                ("columns", (slice(None), slice(0, 3))),
                                                ("full", (slice(None), slice(None)))])
def test_regulated_inits_set_the_first_units_and_zero_w_on_the_scheme(init, a_value, scheme, zeroed):
    torch.manual_seed(0)
    cell = make_cell("plrnn", 2, 6, init=init, integrators=0.5, reg_scheme=scheme)
    assert torch.all(cell.A[:3] == a_value) and torch.all(cell.h[:3] == 0)
    assert torch.all(cell.W[zeroed] == 0)
    free = torch.ones(6, 6, dtype=torch.bool)
    free[zeroed] = False
    free.fill_diagonal_(False)
    assert torch.all(cell.W[free] != 0)  # everything else as drawn
    assert torch.any(cell.A[3:] != a_value)


def test_the_orthogonal_plrnn_starts_orthogonal_with_zero_bias():
    torch.manual_seed(1)
    cell = make_cell("plrnn", 2, 7, init="orthogonal").double()
    r = torch.diag(cell.A) + cell.coupling()
    torch.testing.assert_close(r @ r.T, torch.eye(7, dtype=torch.float64), atol=1e-6, rtol=0)
    assert torch.all(cell.h == 0)


def test_elman_inits_orthogonal_and_np():
    torch.manual_seed(2)
    cell = make_cell("rnn", 3, 50, nonlinearity="relu", weight_init="orthogonal")
    torch.testing.assert_close(cell.weight_hh @ cell.weight_hh.T, torch.eye(50), atol=1e-5, rtol=0)
    assert torch.all(cell.bias_ih == 0) and torch.all(cell.bias_hh == 0)
    cell = make_cell("rnn", 400, 50, nonlinearity="relu", weight_init="np")
    w = cell.weight_hh.double()
    torch.testing.assert_close(w, w.T)
    eigenvalues = torch.linalg.eigvalsh(w)
    assert eigenvalues.max().item() == pytest.approx(1.0, abs=1e-5) and eigenvalues.min() > 0
    assert cell.weight_ih.std().item() == pytest.approx(np_input_scale(50) / 50, rel=0.05)
    assert torch.all(cell.bias_ih == 0)


def test_settings_an_init_would_ignore_are_refused():
    with pytest.raises(UsageError, match="integrators .* applies to init 'identity' or 'l2'"):
        make_cell("plrnn", 2, 4, init="orthogonal", integrators=0.5)
    with pytest.raises(UsageError, match="unknown plrnn reg_scheme 'R'"):
        make_cell("plrnn", 2, 4, init="identity", reg_scheme="R")
    with pytest.raises(UsageError, match="unknown weight_init 'identity'; allowed: default, np, orthogonal"):
        make_cell("rnn", 2, 4, weight_init="identity")


def test_the_l2_and_l4_penalties_by_hand():
    torch.manual_seed(3)
    model = SequenceModel("plrnn", 2, 6, 1)
    cell = model.cells[0]
    with torch.no_grad():
        cell.A.normal_()
        cell.h.normal_()
    a, w, h, c = cell.A[:3], cell.W, cell.h[:3], cell.C[:3]
    l2 = 2.0 * (a.pow(2).mean() + w[:, :3].pow(2).mean() + h.pow(2).mean()) + 0.5 * c.pow(2).mean()
    got = model_penalty(model, "l2", 2.0, 0.5, scheme="columns", tau_c=0.5)
    assert got.item() == pytest.approx(l2.item())
    l4 = 2.0 * (a.pow(4).mean() + w[:3, :3].pow(4).mean() + h.pow(4).mean())
    assert model_penalty(model, "l4", 2.0, 0.5).item() == pytest.approx(l4.item())


@pytest.mark.parametrize("cell", ["rnn", "plrnn"])
def test_the_orthogonality_penalty_by_hand_and_its_gradient_makes_the_matrix_orthogonal(cell):
    torch.manual_seed(4)
    model = SequenceModel(cell, 2, 5, 1)
    inner = model.cells[0]
    r = inner.weight_hh if cell == "rnn" else torch.diag(inner.A) + inner.coupling()
    expected = 3.0 * (r @ r.T - torch.eye(5)).pow(2).mean() + (3.0 * inner.h.pow(2).mean() if cell == "plrnn" else 0)
    assert model_penalty(model, "orthogonal", 3.0, 0.5).item() == pytest.approx(float(expected))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    start = model_penalty(model, "orthogonal", 1.0, 0.5).item()
    for _ in range(300):
        optimizer.zero_grad()
        model_penalty(model, "orthogonal", 1.0, 0.5).backward()
        optimizer.step()
    assert model_penalty(model, "orthogonal", 1.0, 0.5).item() < 1e-3 * start
    with pytest.raises(UsageError, match="needs a cell with one recurrent matrix"):
        model_penalty(SequenceModel("lstm", 2, 4, 1), "orthogonal", 1.0, 0.5)


def _config(tmp_path, *overrides):
    base = ["task.name=adding", "task.seq_len=8", "model.cell=plrnn", "model.hidden_size=6", "train.steps=2",
            "train.eval_every=1", "train.batch_size=4", "task.options.validation_size=8", "task.options.test_size=8",
            f"out={tmp_path}"]
    return apply_overrides(RunConfig(), base + list(overrides))


def test_the_trainers_reg_scheme_reaches_the_init(tmp_path):
    config = _config(tmp_path, "model.options.init=identity", "model.options.integrators=0.5", "train.reg=mar",
                     "train.reg_scheme=columns")
    torch.manual_seed(0)
    cell = build_model(config, build_task(config)).cells[0]
    assert cell.reg_scheme == "columns" and torch.all(cell.W[:, :3] == 0) and torch.any(cell.W[:3, 3:] != 0)
    clash = _config(tmp_path, "model.options.init=identity", "model.options.reg_scheme=full", "train.reg=mar",
                    "train.reg_scheme=columns")
    with pytest.raises(UsageError, match=r"model.reg_scheme \('full'\) and --reg-scheme \('columns'\) differ"):
        train(clash, quiet=True)


def test_a_readout_without_bias(tmp_path):
    summary = train(_config(tmp_path, "model.readout_bias=false", "model.options.init=l2", "train.reg=l2"),
                    quiet=True)
    weights = torch.load(f"{summary['run_dir']}/model.pt")
    assert "head.weight" in weights and "head.bias" not in weights
    assert math.isfinite(summary["test"]["mse"])


def test_settings_that_would_be_ignored_are_refused(tmp_path):
    for settings, message in ((["train.tau=3"], "train.tau = 3.0 applies to a penalty"),
                              (["model.cell=rnn", "train.reg=orthogonal", "train.reg_fraction=0.3"],
                               "reg_fraction = 0.3 applies to --reg mar, l2 or l4"),
                              (["train.trainer=memup", "model.readout_bias=false"], "the MemUP predictor reads out")):
        with pytest.raises(UsageError, match=message):
            train(_config(tmp_path, *settings), quiet=True)


def test_a_double_layer_is_penalised_on_both_halves():
    torch.manual_seed(5)
    model = SequenceModel("plrnn", 2, 8, 1, double=True, init="identity", integrators=0.5)
    halves = model.cells[0].first, model.cells[0].second
    with torch.no_grad():
        for half in halves:
            half.A.normal_()
    expected = sum(5.0 * ((h.A[:2] - 1).pow(2).mean() + h.W[:2].pow(2).mean() + h.h[:2].pow(2).mean())
                   for h in halves)
    assert model_penalty(model, "mar", 5.0, 0.5).item() == pytest.approx(expected.item())
