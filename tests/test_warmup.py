"""Tests of the warm-up (longrnn.methods.warmup): the measures on constructed states, gradients, reachable states,
monostability at initialisation, warm-up reaching its target, and the readout left alone."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from longrnn.errors import UsageError
from longrnn.methods.warmup import (
    measure_vaa,
    minibatches,
    reachable_states,
    stabilization_length,
    vaa,
    vaa_star,
    vaa_star_per_layer,
    warm_up,
)
from longrnn.models import SequenceModel

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def clusters(k: int, size: int, dim: int = 8, spread: float = 0.0, seed: int = 0) -> torch.Tensor:
    """k well-separated centres (unit-scale normals), ``size`` copies of each, jittered by ``spread``."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, dim, generator=g, dtype=torch.float64) * 10
    states = centres.repeat_interleave(size, 0)
    return states + spread * torch.randn(states.shape, generator=g, dtype=torch.float64)


def small_inputs(n: int = 64, length: int = 10, features: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, length, features, generator=torch.Generator().manual_seed(seed))


# --- the measures on constructed states -----------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 32])
def test_identical_states_give_one_over_n(n):
    states = torch.ones(n, 5, dtype=torch.float64)
    assert vaa(states) == pytest.approx(1 / n)
    assert float(vaa_star(states)) == pytest.approx(1 / n)


@pytest.mark.parametrize(("k", "size"), [(2, 16), (4, 8), (8, 3)])
def test_k_tight_clusters_give_k_over_n(k, size):
    """Within a cluster all states are closer than ε (each counts its `size` cluster mates); clusters are far apart."""
    states = clusters(k, size, spread=1e-7)
    assert vaa(states) == pytest.approx(1 / size)
    assert float(vaa_star(states)) == pytest.approx(1 / size, rel=1e-3)


def test_states_far_apart_give_one():
    states = clusters(32, 1)
    assert vaa(states) == 1.0
    assert float(vaa_star(states)) == pytest.approx(1.0, abs=1e-4)


def test_two_states_at_distance_d_give_the_closed_form():
    """n = 2: VAA* = 1 / (1 + C) with C = 1 - (d - ε)/(d + 1e-6); VAA counts the pair only below ε."""
    eps = 1e-3
    for d in (0.5e-3, 2e-3, 1e-2, 1.0):
        states = torch.tensor([[0.0, 0.0], [d, 0.0]], dtype=torch.float64)
        closeness = 1.0 if d <= eps else 1 - (d - eps) / (d + 1e-6)
        assert float(vaa_star(states, eps)) == pytest.approx(1 / (1 + closeness))
        assert vaa(states, eps) == (0.5 if d < eps else 1.0)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 12),
    scale=st.sampled_from([1e-6, 1e-4, 1e-2, 1.0]),
    seed=st.integers(0, 1000),
)
def test_measures_lie_in_their_range_and_ignore_order(n, scale, seed):
    states = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    hard, soft = vaa(states), float(vaa_star(states))
    assert 1 / n - 1e-12 <= soft <= hard + 1e-12 <= 1 + 1e-12  # every C_ij > 0 adds to the soft count
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))
    assert float(vaa_star(states[order])) == pytest.approx(soft)
    assert vaa(states[order]) == pytest.approx(hard)


def test_vaa_star_gradients_are_finite_for_identical_and_mixed_states():
    for states in (torch.zeros(4, 3, dtype=torch.float64), clusters(2, 3, spread=1e-6)):
        states = states.clone().requires_grad_()
        vaa_star(states).backward()
        assert torch.isfinite(states.grad).all()
    separate = clusters(3, 2, spread=1e-2).requires_grad_()
    vaa_star(separate).backward()
    assert separate.grad.abs().sum() > 0


def test_bad_state_shapes_are_refused():
    with pytest.raises(UsageError, match=r"\(n, d\)"):
        vaa_star(torch.zeros(3))
    with pytest.raises(UsageError, match=r"\(n, d\)"):
        vaa(torch.zeros(0, 2))


# --- reachable states, curriculum ------------------------------------------------------------------


def test_reachable_states_equal_running_each_prefix_alone():
    torch.manual_seed(0)
    model = SequenceModel("lstm", 2, 5, 1, num_layers=2)
    x = small_inputs(6, 9, 2)
    starts = reachable_states(model, x, torch.Generator().manual_seed(3))
    lengths = torch.randint(1, 10, (6,), generator=torch.Generator().manual_seed(3))
    for k, c in enumerate(lengths.tolist()):
        _, finals = model(x[k : k + 1, :c])
        for layer in range(2):
            torch.testing.assert_close(starts[layer][0][k], finals[layer][0][0])  # h
            torch.testing.assert_close(starts[layer][1][k], finals[layer][1][0])  # c


def test_stabilization_curriculum_grows_by_the_increment_up_to_the_maximum():
    g = torch.Generator().manual_seed(0)
    assert all(stabilization_length(0, 10, 200, g) == 1 for _ in range(5))
    draws = [stabilization_length(3, 10, 200, g) for _ in range(300)]
    assert min(draws) >= 1 and max(draws) == 31
    assert max(stabilization_length(100, 10, 200, g) for _ in range(300)) <= 200


# --- gradients, monostability, warm-up --------------------------------------------------------------


def test_gradients_flow_into_every_layer_and_never_the_readout():
    torch.manual_seed(1)
    model = SequenceModel("gru", 1, 6, 1, num_layers=3)
    values = vaa_star_per_layer(model, small_inputs(8, 6), stabilization=3, eps=1e-2,
                                generator=torch.Generator().manual_seed(0))
    assert values.shape == (3,)
    (values - 0.95).pow(2).mean().backward()
    for layer in model.layers:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())
    assert model.head.weight.grad is None


def test_partial_warm_up_measures_only_the_first_half_of_double_layers():
    torch.manual_seed(2)
    model = SequenceModel("gru", 1, 8, 1, num_layers=2, double=True)
    values = vaa_star_per_layer(model, small_inputs(8, 6), stabilization=3, eps=1e-2, partial=True,
                                generator=torch.Generator().manual_seed(0))
    values.sum().backward()
    top, bottom = model.cells[1], model.cells[0]
    assert all(p.grad is None or not p.grad.any() for p in top.second.parameters())  # never measured
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in top.first.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in bottom.second.parameters())  # via h0


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_standard_cells_are_close_to_monostable_at_initialisation(cell):
    torch.manual_seed(3)
    model = SequenceModel(cell, 1, 16, 1, num_layers=2)
    n = 16
    value = measure_vaa(model, small_inputs(n, 10), steps=300, generator=torch.Generator().manual_seed(1))
    assert value <= 2 / n  # 1/n: every sample ends on the same attractor


@pytest.mark.parametrize("cell", ["gru", "nbrc"])
def test_warm_up_raises_vaa_star_to_near_the_target(cell):
    torch.manual_seed(0)
    model = SequenceModel(cell, 1, 16, 1)
    x = small_inputs(64, 10)
    with torch.no_grad():
        before = float(vaa_star_per_layer(model, x[:16], 30, generator=torch.Generator().manual_seed(3)))
    history = warm_up(model, x, steps=100, batch_size=16, stabilization_max=30,
                      generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        after = float(vaa_star_per_layer(model, x[:16], 30, generator=torch.Generator().manual_seed(3)))
    assert before < 0.7 and after > 0.85
    assert len(history["loss"]) == 100 and len(history["vaa_star"][0]) == 1
    assert history["seconds"] >= history["time"][-1] > 0
    assert max(history["stabilization"]) <= 30


def test_warm_up_never_changes_the_readout():
    torch.manual_seed(4)
    model = SequenceModel("lstm", 1, 6, 2, num_layers=2)
    head = {k: v.clone() for k, v in model.head.state_dict().items()}
    cells = [p.detach().clone() for p in model.layers.parameters()]
    warm_up(model, small_inputs(16, 5), steps=5, batch_size=8, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(head[k], v) for k, v in model.head.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(cells, model.layers.parameters()))


@pytest.mark.parametrize(
    ("options", "message"),
    [({"batch_size": 100}, "batch_size must be in"), ({"target": 1.5}, "target must be in"),
     ({"lr": 0.0}, "lr and eps must be positive"), ({"steps": -1}, "steps must be")],
)
def test_bad_warm_up_options_name_the_bad_value(options, message):
    model = SequenceModel("gru", 1, 4, 1)
    with pytest.raises(UsageError, match=message):
        warm_up(model, small_inputs(16, 4), **{"batch_size": 8, **options})


def test_vaa_of_non_finite_states_is_nan_not_infinite():
    states = torch.zeros(4, 3)
    states[1, 0] = float("nan")
    assert math.isnan(vaa(states))


@pytest.mark.parametrize("drop_last", [True, False])
def test_minibatches_cover_each_epoch_and_keep_the_last_small_batch_only_when_asked(drop_last):
    batches = minibatches(10, 4, torch.Generator().manual_seed(0), drop_last=drop_last)
    epoch = [next(batches) for _ in range(2 if drop_last else 3)]
    assert [len(b) for b in epoch] == ([4, 4] if drop_last else [4, 4, 2])  # the official DataLoader's: 4, 4, 2
    seen = torch.cat(epoch)
    assert len(set(seen.tolist())) == len(seen) and (drop_last or sorted(seen.tolist()) == list(range(10)))
    assert len(next(batches)) == 4  # the next epoch starts with a whole batch


def test_warm_up_takes_drop_last_and_checks_it():
    model = SequenceModel("gru", 1, 8, 1)
    inputs = torch.randn(10, 6, 1)
    history = warm_up(model, inputs, steps=3, batch_size=4, stabilization_max=3, drop_last=False,
                      generator=torch.Generator().manual_seed(0))
    assert len(history["loss"]) == 3
    with pytest.raises(UsageError, match="drop_last"):
        warm_up(model, inputs, steps=1, batch_size=4, drop_last="no")
