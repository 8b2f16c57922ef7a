"""The counted memory of `longrnn bench speed`: what a forward holds for backward."""

import torch

from longrnn.bench.speed import held_after_forward_bytes
from longrnn.cells import make_cell
from longrnn.models import Recurrent


def test_held_memory_grows_linearly_with_the_sequence_and_is_zero_without_a_graph():
    torch.manual_seed(0)
    model = Recurrent(make_cell("rnn", 4, 32), fused=False)
    short, long = (held_after_forward_bytes(model, torch.randn(8, T, 4)) for T in (100, 200))
    assert short > 8 * 100 * 32 * 4  # at least the states h_1..h_T in float32
    assert 1.8 < long / short < 2.2
    with torch.no_grad():
        assert held_after_forward_bytes(model, torch.randn(8, 200, 4)) < short / 10


def test_held_memory_counts_what_a_hand_written_backward_keeps_on_its_context():
    """The fast-gate LSTM sequence keeps its per-step gate factors in lists on ctx, not in
    save_for_backward: they must be counted, so it holds more than its outputs alone."""
    torch.manual_seed(0)
    x = torch.randn(4, 50, 8)
    model = Recurrent(make_cell("lstm", 8, 16, gate="fast", engine="eager"))
    outputs_bytes = 4 * 50 * 16 * 4
    assert held_after_forward_bytes(model, x) > 4 * outputs_bytes
