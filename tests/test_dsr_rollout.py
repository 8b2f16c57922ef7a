"""Forced rollouts, free generation, n-step prediction error, the reconstruction metrics, TF training."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from longrnn.dsr import make_data
from longrnn.dsr.metrics import power_spectrum_distance, state_space_divergence
from longrnn.dsr.rollout import forced_rollout, generate, prediction_error
from longrnn.errors import UsageError
from longrnn.models import SequenceModel
from longrnn.runs.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from longrnn.training.trainer import train


@pytest.fixture
def model():
    torch.manual_seed(0)
    return SequenceModel("plrnn", 3, 8, 3, readout="all", output="relu").double()


@pytest.fixture(scope="module")
def lorenz():
    return make_data("lorenz63", n_train=1, n_test=2, length=3000, seed=0)


def identity_model() -> SequenceModel:
    """z_t = x_t and a readout of z: the model predicts x̂_{t+1} = x_t (persistence)."""
    m = SequenceModel("plrnn", 3, 3, 3, readout="all", init="plain").double()
    cell = m.cells[0]
    with torch.no_grad():
        for p in (cell.A, cell.W, cell.h, m.head.bias):
            p.zero_()
        cell.C.copy_(torch.eye(3))
        m.head.weight.copy_(torch.eye(3))
    return m


# --- rollouts -------------------------------------------------------------------------------------------


def test_forcing_every_step_is_the_plain_run(model):
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    torch.testing.assert_close(forced_rollout(model, x, interval=1), model(x[:, :-1])[0])
    torch.testing.assert_close(forced_rollout(model, x, interval=4, alpha=1.0), model(x[:, :-1])[0])


def test_sparse_forcing_uses_the_data_only_at_forcing_steps(model):
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    base = forced_rollout(model, x, interval=5)
    changed = x.clone()
    changed[:, 3] += 1.0  # not a forcing step (0, 5, 10): ignored
    torch.testing.assert_close(forced_rollout(model, changed, interval=5), base)
    changed[:, 5] += 1.0  # a forcing step: everything after it changes
    after = forced_rollout(model, changed, interval=5)
    torch.testing.assert_close(after[:, :5], base[:, :5])
    assert (after[:, 5:] - base[:, 5:]).abs().amin(-1).gt(0).all()


def test_no_forcing_after_the_start_is_free_generation(model):
    x = torch.randn(2, 10, 3, dtype=torch.float64)
    torch.testing.assert_close(forced_rollout(model, x, interval=100), generate(model, x[:, :1], 9))


def test_generalised_forcing_mixes_data_and_prediction(model):
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    alpha = 0.3
    y0, state = model(x[:, :1])
    u1 = alpha * x[:, 1] + (1 - alpha) * y0[:, 0]
    y1, _ = model(u1[:, None], state)
    out = forced_rollout(model, x, interval=10, alpha=alpha)
    torch.testing.assert_close(out[:, 1], y1[:, 0])
    out.sum().backward()  # the gradient reaches the parameters through the fed-back predictions
    assert model.cells[0].C.grad.abs().sum() > 0


def test_rollouts_work_with_other_cells():
    torch.manual_seed(0)
    lstm = SequenceModel("lstm", 3, 5, 3, readout="all")
    x = torch.randn(2, 8, 3)
    assert forced_rollout(lstm, x, interval=3, alpha=0.2).shape == (2, 7, 3)
    assert generate(lstm, x[:, :4], 20).shape == (2, 20, 3)
    assert math.isfinite(prediction_error(lstm, x, steps=3))


def test_prediction_error_of_persistence_is_the_lagged_difference():
    x = torch.randn(2, 30, 3, dtype=torch.float64).cumsum(1)
    m = identity_model()
    for n in (1, 4):
        expected = float((x[:, n:] - x[:, :-n]).pow(2).mean())
        assert prediction_error(m, x, steps=n) == pytest.approx(expected)


def test_prediction_error_one_step_is_the_forced_mse(model):
    x = torch.randn(2, 15, 3, dtype=torch.float64)
    with torch.no_grad():
        expected = float((model(x[:, :-1])[0] - x[:, 1:]).pow(2).mean())
    assert prediction_error(model, x, steps=1) == pytest.approx(expected)
    with pytest.raises(UsageError, match="PE\\(20\\)"):
        prediction_error(model, x, steps=20)


# --- metrics ---------------------------------------------------------------------------------------------


def test_binned_divergence_by_hand():
    true = np.array([[0.0], [0.0], [1.0], [1.0]])
    gen = np.zeros((4, 1))
    a = 1e-5  # counts: true (2, 2), generated (4, 0) in two bins split at 0.5
    q = np.array([(4 + a) / (4 + 2 * a), a / (4 + 2 * a)])
    expected = 0.5 * np.log(0.5 / q[0]) + 0.5 * np.log(0.5 / q[1])
    assert state_space_divergence(true, gen, bins=2) == pytest.approx(expected)
    assert math.isnan(state_space_divergence(true, gen + 100.0, bins=2))  # nothing generated in range


def test_binned_divergence_pins_the_range_padding_and_the_bin_edges():
    """True points 0, 1, 2, 3 in 4 bins over [min - 0.1 sd, max + 0.1 sd] (sd with ddof 0: sqrt(1.25)): the
    edges are -0.112, 0.694, 1.500, 2.306, 3.112, so generated points 0.65, 0.72, 1.45, 1.55 fall 1, 2, 1, 0
    per bin. A padding of 0.2 sd moves 0.65 into the second bin; rounding instead of flooring moves 0.72."""
    true = np.array([[0.0], [1.0], [2.0], [3.0]])
    gen = np.array([[0.65], [0.72], [1.45], [1.55]])
    a = 1e-5
    p = np.full(4, (1 + a) / (4 + 4 * a))
    q = (np.array([1, 2, 1, 0]) + a) / (4 + 4 * a)
    assert state_space_divergence(true, gen, bins=4) == pytest.approx(float((p * np.log(p / q)).sum()), rel=1e-12)


def test_spectrum_distance_by_hand_for_two_pure_tones():
    """Without smoothing, the spectrum of a whole-period cosine is one bin: two tones at different
    frequencies have disjoint spectra (D_H = 1), the same tone shifted in phase has D_H = 0."""
    t = np.arange(256)
    tone = np.cos(2 * np.pi * 8 * t / 256)[:, None]
    other = np.cos(2 * np.pi * 20 * t / 256)[:, None]
    shifted = np.cos(2 * np.pi * 8 * t / 256 + 1.0)[:, None]
    assert power_spectrum_distance(tone, other, smoothing=0) == pytest.approx(1.0, abs=1e-12)
    assert power_spectrum_distance(tone, shifted, smoothing=0) == pytest.approx(0.0, abs=1e-12)
    half = np.cos(2 * np.pi * 8 * t / 256)[:, None] + np.cos(2 * np.pi * 20 * t / 256)[:, None]
    # half the power in each tone's bin: Hellinger distance sqrt(1 - sqrt(1/2)) from either pure tone
    assert power_spectrum_distance(tone, half, smoothing=0) == pytest.approx(np.sqrt(1 - np.sqrt(0.5)), abs=1e-12)


@pytest.mark.parametrize("method", ["bins", "gmm"])
def test_divergence_zero_for_itself_large_for_unrelated_and_order_blind(lorenz, method):
    a, b = lorenz.train[0], lorenz.test[0]
    unrelated = 0.5 * torch.randn(a.shape, generator=torch.Generator().manual_seed(0)) + 1.5  # a blob off the attractor

    def d(x, y):
        return state_space_divergence(x, y, method=method)

    assert d(a, a) == pytest.approx(0.0, abs=1e-12)
    assert d(a, b) < 0.5 * d(a, unrelated)  # another stretch of the same attractor is much closer
    shuffled = b[torch.randperm(b.shape[0], generator=torch.Generator().manual_seed(1))]
    assert d(a, shuffled) == pytest.approx(d(a, b))


def test_spectrum_distance_zero_for_itself_large_for_unrelated(lorenz):
    a, b = lorenz.train[0], lorenz.test[0]
    noise = torch.randn(a.shape, generator=torch.Generator().manual_seed(0))
    assert power_spectrum_distance(a, a) == pytest.approx(0.0, abs=1e-12)
    assert power_spectrum_distance(a, b) < 0.2 * power_spectrum_distance(a, noise)
    assert 0 < power_spectrum_distance(a, noise) <= 1
    batch = torch.stack([a, b])
    assert power_spectrum_distance(batch, noise) == pytest.approx(power_spectrum_distance(batch.flip(0), noise))


# --- training -------------------------------------------------------------------------------------------


def test_teacher_forcing_training_runs_and_learns(tmp_path):
    config = RunConfig(
        task=TaskConfig("lorenz63", 30, {"length": 1000, "validation_size": 16, "test_size": 16}),
        model=ModelConfig("plrnn", hidden_size=12, options={"output": "relu"}),
        train=TrainConfig(trainer="teacher_forcing", tf_interval=5, steps=60, batch_size=16, lr=3e-3,
                          eval_every=20, threads=1, stop_when_solved=False),
        out=str(tmp_path),
        name="tf",
    )
    summary = train(config, quiet=True)
    lines = (tmp_path / "tf" / "metrics.jsonl").read_text().splitlines()
    first, last = (float(line.split('"val_mse": ')[1].rstrip("}")) for line in (lines[0], lines[-1]))
    assert summary["status"] == "finished" and last < first


def test_teacher_forcing_needs_a_next_step_task(tmp_path):
    config = RunConfig(task=TaskConfig("adding", 20), model=ModelConfig("plrnn", hidden_size=4),
                       train=TrainConfig(trainer="teacher_forcing", steps=1), out=str(tmp_path))
    with pytest.raises(UsageError, match="next-step prediction task"):
        train(config, quiet=True)


def test_prediction_error_on_evenly_spaced_starts():
    x = torch.randn(1, 60, 3, dtype=torch.float64).cumsum(1)
    n, starts = 5, 7
    times = torch.linspace(0, 60 - n - 1, starts).long()
    expected = float((x[:, times + n] - x[:, times]).pow(2).mean())
    assert prediction_error(identity_model(), x, steps=n, starts=starts) == pytest.approx(expected)


def test_spectrum_distance_of_a_constant_generation_is_near_one(lorenz):
    a = lorenz.train[0]
    assert power_spectrum_distance(a, torch.zeros_like(a) + 0.3) > 0.9


def test_dsr_eval_writes_metrics_and_pictures(tmp_path, capsys):
    from longrnn.cli import main

    config = RunConfig(
        task=TaskConfig("lorenz63", 20, {"length": 400, "validation_size": 8, "test_size": 8}),
        model=ModelConfig("plrnn", hidden_size=6, options={"output": "relu"}),
        train=TrainConfig(trainer="teacher_forcing", tf_interval=5, steps=4, batch_size=4, eval_every=2, threads=1),
        out=str(tmp_path),
        name="r",
    )
    train(config, quiet=True)
    for bad in ("0", "-1", "400"):  # forced samples must leave a free run: 1 to 399 of the 400
        assert main(["dsr", "eval", str(tmp_path / "r"), "--burn-in", bad, "--no-plots"]) == 2
        assert f"[1, 399] (the test trajectory has 400), got {bad}" in capsys.readouterr().err
    assert main(["dsr", "eval", str(tmp_path / "r"), "--pe-steps", "5", "--burn-in", "30"]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    result = summary["reconstruction"]
    assert result["burn_in"] == 30
    assert summary["status"] == "finished"  # the training summary is kept
    assert result["state_space_divergence"] >= 0 and 0 <= result["power_spectrum_distance"] <= 1
    assert result["prediction_error_5"] >= 0 and result["length"] == 400
    generated = np.load(tmp_path / "r" / "generated.npy")
    assert generated.shape == (400, 3) and generated.dtype == np.float16
    for name in ("attractor.png", "series.png", "spectra.png"):
        assert (tmp_path / "r" / name).stat().st_size > 1000


def test_dsr_eval_refuses_other_tasks(tmp_path, capsys):
    from longrnn.cli import main

    config = RunConfig(task=TaskConfig("adding", 10), model=ModelConfig("gru", hidden_size=4),
                       train=TrainConfig(steps=2, eval_every=1, batch_size=4), out=str(tmp_path), name="a")
    train(config, quiet=True)
    assert main(["dsr", "eval", str(tmp_path / "a"), "--no-plots"]) == 2
    assert "not a dynamical system" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("measure", ["bins", "gmm", "spectrum"])
def test_a_measure_over_data_that_are_not_finite_is_undefined(measure, bad):
    """A generation that diverges after 100 steps is not scored on its first 100 (which ranked it above a
    generation stuck at a fixed point)."""
    t = torch.linspace(0, 60, 2000, dtype=torch.float64)
    true = torch.stack([torch.sin(t), torch.cos(1.3 * t)], -1)
    diverged = true.clone()
    diverged[100:] = bad
    stuck = torch.zeros_like(true) + 0.3

    def score(gen):
        if measure == "spectrum":
            return power_spectrum_distance(true, gen)
        return state_space_divergence(true, gen, method=measure, samples=200, max_points=500)

    assert math.isnan(score(diverged)) and math.isnan(score(true[:0].new_full(true.shape, bad)))
    assert math.isfinite(score(stuck)) and 0 <= score(true) < score(stuck)
