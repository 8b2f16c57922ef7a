"""The rPLRNN manifold-attractor penalty: hand-computed values, which parameters it touches, training."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from longrnn.cells import make_cell
from longrnn.errors import UsageError
from longrnn.methods.regularizers import manifold_attractor_penalty, model_penalty
from longrnn.models import SequenceModel
from longrnn.runs.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from longrnn.training.trainer import train


def constructed_cell():
    """M = 4, so fraction 0.5 regularises units 0 and 1."""
    cell = make_cell("plrnn", 1, 4, init="plain")
    with torch.no_grad():
        cell.A.copy_(torch.tensor([0.5, 2.0, 7.0, 7.0]))
        cell.W.copy_(torch.tensor([
            [0.0, 1.0, 2.0, 0.0],
            [3.0, 0.0, 0.0, 0.0],
            [9.0, 9.0, 0.0, 9.0],
            [9.0, 9.0, 9.0, 0.0],
        ]))
        cell.h.copy_(torch.tensor([1.0, -3.0, 9.0, 9.0]))
    return cell


def test_penalty_by_hand():
    cell = constructed_cell()
    # tau_A * mean((0.5-1)^2, (2-1)^2) = 2 * 0.625; tau_W * mean of the 8 squares in rows 0-1 = 3 * 14/8;
    # h shares tau_W: 3 * mean(1, 9) = 3 * 5.  Units 2 and 3 do not count.
    expected = 2 * 0.625 + 3 * 14 / 8 + 3 * 5
    value = manifold_attractor_penalty(cell, tau_a=2.0, tau_w=3.0, fraction=0.5)
    assert value.item() == pytest.approx(expected)
    assert manifold_attractor_penalty(cell, 2.0, 3.0, fraction=0.0).item() == 0.0
    # fraction 0.25 -> unit 0 only: 2 * 0.25 + 3 * 5/4 + 3 * 1
    assert manifold_attractor_penalty(cell, 2.0, 3.0, fraction=0.25).item() == pytest.approx(0.5 + 3.75 + 3)
    # the number of units is int(M * fraction): 0.6 * 4 = 2.4 -> 2 units, as 0.5
    assert manifold_attractor_penalty(cell, 2.0, 3.0, fraction=0.6).item() == pytest.approx(expected)


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 9), fraction=st.floats(0.0, 1.0), tau_a=st.floats(0, 20), tau_w=st.floats(0, 20),
       seed=st.integers(0, 1000))
def test_penalty_equals_the_sum_form_with_mean_weights(m, fraction, tau_a, tau_w, seed):
    """Means are sums with weights tau/P (A, h) and tau/(P M) (W); P = int(M fraction)."""
    torch.manual_seed(seed)
    cell = make_cell("plrnn", 2, m, init="plain").double()
    with torch.no_grad():
        cell.W.normal_()  # a non-zero diagonal counts too, as in the paper's code (raw weight)
    p = int(m * fraction)
    value = manifold_attractor_penalty(cell, tau_a, tau_w, fraction)
    if p == 0:
        assert value.item() == 0.0
        return
    by_sums = (
        tau_a / p * ((cell.A[:p] - 1) ** 2).sum()
        + tau_w / (p * m) * (cell.W[:p] ** 2).sum()
        + tau_w / p * (cell.h[:p] ** 2).sum()
    )
    torch.testing.assert_close(value, by_sums)


def test_penalty_is_zero_at_the_integrator_init_and_touches_rows_only():
    torch.manual_seed(0)
    cell = make_cell("plrnn", 2, 6, init="identity", integrators=0.5)
    assert manifold_attractor_penalty(cell, 5.0, 5.0, 0.5).item() == 0.0
    with torch.no_grad():
        cell.A.add_(0.1)
        cell.W.add_(0.1)
        cell.h.add_(0.1)
    manifold_attractor_penalty(cell, 5.0, 5.0, 0.5).backward()
    assert cell.A.grad[:3].abs().min() > 0 and not cell.A.grad[3:].any()
    assert cell.W.grad[:3].abs().min() > 0 and not cell.W.grad[3:].any()  # rows, every column
    assert cell.h.grad[:3].abs().min() > 0 and not cell.h.grad[3:].any()
    assert cell.C.grad is None


def test_model_penalty_sums_layers_and_checks_the_cell():
    torch.manual_seed(0)
    model = SequenceModel("plrnn", 1, 4, 1, num_layers=2)
    total = model_penalty(model, "mar", 5.0, 0.5)
    parts = [manifold_attractor_penalty(c, 5.0, 5.0, 0.5) for c in model.cells]
    torch.testing.assert_close(total, parts[0] + parts[1])
    assert model_penalty(model, "none", 5.0, 0.5) is None
    with pytest.raises(UsageError, match="needs a cell with parameters A, W, h.*'lstm'"):
        model_penalty(SequenceModel("lstm", 1, 4, 1), "mar", 5.0, 0.5)
    with pytest.raises(UsageError, match="unknown reg 'l1'"):
        model_penalty(model, "l1", 5.0, 0.5)
    with pytest.raises(UsageError, match="reg_fraction"):
        model_penalty(model, "mar", 5.0, 1.5)


def _integrator_drift(tmp_path, tau: float) -> tuple[float, list[dict]]:
    config = RunConfig(
        task=TaskConfig("adding", 20, {"variant": "rplrnn", "validation_size": 64, "test_size": 64}),
        model=ModelConfig("plrnn", hidden_size=8, options={"init": "identity", "integrators": 0.5}),
        train=TrainConfig(steps=40, batch_size=16, lr=1e-2, eval_every=20, clip=3.0, reg="mar", tau=tau,
                          reg_fraction=0.5, threads=1, diagnostics=False, stop_when_solved=False),
        out=str(tmp_path),
        name=f"tau{tau}",
    )
    summary = train(config, quiet=True)
    run_dir = tmp_path / f"tau{tau}"
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]
    a, w, h = (checkpoint[f"layers.0.cell.{n}"][:4] for n in ("A", "W", "h"))
    drift = max((a - 1).abs().max(), w.abs().max(), h.abs().max()).item()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert summary["status"] == "finished"
    return drift, records


def test_regularised_units_stay_integrators_under_training(tmp_path):
    free, _ = _integrator_drift(tmp_path, tau=0.0)
    held, records = _integrator_drift(tmp_path, tau=1000.0)
    assert free > 0.05  # without the penalty the integrator units move (lr 1e-2, 40 steps)
    assert held < 0.25 * free
    assert all("train_reg" in r and r["train_reg"] >= 0 for r in records)


def test_trainer_rejects_mar_on_a_cell_without_plrnn_parameters(tmp_path):
    config = RunConfig(model=ModelConfig("gru", hidden_size=4), train=TrainConfig(steps=1, reg="mar"),
                       out=str(tmp_path))
    with pytest.raises(UsageError, match="plrnn"):
        train(config, quiet=True)


def test_cli_flags_reach_the_train_config():
    from longrnn.cli import build_parser, config_from_args

    args = build_parser().parse_args(["train", "--cell", "plrnn", "--reg", "mar", "--tau", "5",
                                      "--reg-fraction", "0.25"])
    config = config_from_args(args)
    assert (config.train.reg, config.train.tau, config.train.reg_fraction) == ("mar", 5.0, 0.25)


def test_the_official_codes_other_schemes_and_the_input_penalty_by_hand():
    cell = constructed_cell()
    W, C = cell.W.detach(), cell.C.detach()
    a_and_h = 2 * 0.625 + 3 * 5  # A and h: the first two units, whatever the scheme
    rows = manifold_attractor_penalty(cell, 2.0, 3.0, 0.5, scheme="rows")
    columns = manifold_attractor_penalty(cell, 2.0, 3.0, 0.5, scheme="columns")
    full = manifold_attractor_penalty(cell, 2.0, 3.0, 0.5, scheme="full")
    assert rows.item() == pytest.approx(a_and_h + 3 * W[:2].pow(2).mean().item())  # "R": W[:P, :]
    assert columns.item() == pytest.approx(a_and_h + 3 * W[:, :2].pow(2).mean().item())  # "L": W[:, :P]
    assert full.item() == pytest.approx(a_and_h + 3 * W.pow(2).mean().item())  # "F": all of W
    assert len({round(v.item(), 6) for v in (rows, columns, full)}) == 3
    with_c = manifold_attractor_penalty(cell, 2.0, 3.0, 0.5, tau_c=7.0)
    assert with_c.item() == pytest.approx(rows.item() + 7 * C[:2].pow(2).mean().item())  # tau_C on C[:P, :]
    with pytest.raises(UsageError, match="unknown reg_scheme 'R'"):
        manifold_attractor_penalty(cell, 2.0, 3.0, 0.5, scheme="R")


def test_reg_scheme_and_tau_c_need_the_penalty(tmp_path):
    from longrnn.runs.config import apply_overrides

    base = ["task.name=adding", "task.seq_len=8", "model.cell=plrnn", "model.hidden_size=4", "train.steps=1"]
    for setting in ("train.reg_scheme=columns", "train.tau_c=1.0"):
        with pytest.raises(UsageError, match=r"applies to --reg mar or l2; this run's reg is 'none'"):
            train(apply_overrides(RunConfig(out=str(tmp_path)), [*base, setting]), quiet=True)
