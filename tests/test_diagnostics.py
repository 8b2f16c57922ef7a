"""Gate saturation diagnostics."""

import pytest
import torch

from longrnn.methods.diagnostics import gate_statistics, keep_gate_values, states_before_each_step
from longrnn.models import SequenceModel


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_keep_gate_values_match_the_step_loop(cell):
    """The vectorised recomputation gives the gate values the step loop used, for every layer."""
    torch.manual_seed(0)
    model = SequenceModel(cell, 2, 5, 1, num_layers=2, gate="fast", forget_init="chrono:20")
    x = torch.randn(3, 7, 2)
    recorded = []
    for layer in model.layers:
        original = layer.cell.keep_gate

        def spy(*args, _original=original):
            value = _original(*args)
            recorded.append(value)
            return value

        layer.cell.keep_gate = spy
    with torch.no_grad():  # asking for per-step states runs the step loop, which calls keep_gate
        h = x
        for layer in model.layers:
            h, _, _ = layer(h, return_states=True)
    for layer in model.layers:
        del layer.cell.keep_gate
    expected = torch.cat([torch.stack(recorded[:7], 1).flatten(), torch.stack(recorded[7:], 1).flatten()])
    torch.testing.assert_close(keep_gate_values(model, x), expected)


def test_states_before_each_step_shifts_tuples():
    init = (torch.zeros(2, 3), torch.ones(2, 3))
    states = (torch.arange(24.0).reshape(2, 4, 3), torch.arange(24.0).reshape(2, 4, 3))
    prev = states_before_each_step(init, states)
    assert torch.equal(prev[0][:, 0], init[0]) and torch.equal(prev[1][:, 0], init[1])
    assert torch.equal(prev[0][:, 1:], states[0][:, :-1])


def test_saturated_and_timescale_statistics():
    torch.manual_seed(0)
    model = SequenceModel("lstm", 1, 4, 1, gate="fast", forget_init="constant:30.0", gate_parity=False)
    stats = gate_statistics(model, torch.zeros(2, 5, 1))
    assert stats["gate_at_1"] == 1.0 and stats["gate_at_0"] == 0.0 and "timescale_p50" not in stats
    model = SequenceModel("lstm", 1, 4, 1, forget_init="constant:2.0")
    with torch.no_grad():
        model.cells[0].weight_hh.zero_()
        model.cells[0].weight_ih.zero_()
    stats = gate_statistics(model, torch.zeros(2, 5, 1))
    assert stats["gate_at_1"] == 0.0
    assert stats["timescale_p50"] == pytest.approx(1 + torch.e**2, rel=1e-5)  # 1/(1 - σ(2))


def test_cells_without_a_keep_gate_give_no_statistics():
    assert gate_statistics(SequenceModel("rnn", 1, 4, 1), torch.zeros(2, 5, 1)) == {}


@pytest.mark.parametrize("cell", ["lstm", "gru", "nbrc"])
def test_chunked_diagnostics_equal_one_pass_over_the_whole_sequence(cell):
    """Running the stack chunk by chunk from carried states changes nothing: same values, same statistics."""
    torch.manual_seed(0)
    model = SequenceModel(cell, 2, 6, 1, num_layers=2)
    x = torch.randn(3, 23, 2)
    torch.testing.assert_close(keep_gate_values(model, x, chunk_len=5), keep_gate_values(model, x, chunk_len=100))
    chunked, whole = gate_statistics(model, x, chunk_len=4), gate_statistics(model, x, chunk_len=23)
    assert chunked.keys() == whole.keys() and all(chunked[k] == pytest.approx(whole[k], rel=1e-5) for k in whole)
