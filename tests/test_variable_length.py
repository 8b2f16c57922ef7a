"""Variable-length batches: padding a batch with other sequences of any lengths changes no sequence's
outputs, final state, loss or gradients compared with running it alone (every cell, float64)."""

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

from longrnn.cells import available as available_cells
from longrnn.errors import UsageError
from longrnn.models import SequenceModel

LENGTHS = [5, 2, 7, 1]


def model64(cell: str, readout: str, **options) -> SequenceModel:
    torch.manual_seed(0)
    return SequenceModel(cell, 3, 8, 2, num_layers=2, readout=readout, **options).double()


def sequences():
    g = torch.Generator().manual_seed(1)
    return [torch.randn(n, 3, generator=g, dtype=torch.float64) for n in LENGTHS]


def padded(seqs, fill: float = 7.0):
    """The batch padded with junk (not zeros: padding must not be read at all)."""
    x = torch.full((len(seqs), max(LENGTHS), 3), fill, dtype=torch.float64)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
    return x


def grads(model):
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("double", [False, True])
@pytest.mark.parametrize("readout", ["last", "all"])
@pytest.mark.parametrize("cell", sorted(available_cells()))
def test_padding_changes_no_sequence(cell, readout, double):
    if double and cell in ("conv_unitary", "conv_rnn"):
        pytest.skip("a double conv layer needs a lattice of half the width; covered without double")
    model = model64(cell, readout, double=double)
    seqs = sequences()
    alone, alone_states, alone_grads = [], [], None
    for s in seqs:
        model.zero_grad()
        y, state = model(s.unsqueeze(0))
        y.square().sum().backward()
        alone.append(y[0])
        alone_states.append(state)
        g = grads(model)
        alone_grads = g if alone_grads is None else [a + b for a, b in zip(alone_grads, g)]
    for x, lengths in ((padded(seqs), torch.tensor(LENGTHS)), (pack_sequence(seqs, enforce_sorted=False), None)):
        model.zero_grad()
        y, state = model(x, lengths=lengths)
        for i, n in enumerate(LENGTHS):
            expected = alone[i]
            got = y[i] if readout == "last" else y[i, :n]
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
            if readout == "all":
                assert not y[i, n:].any()  # zeros after the sequence's end
            for layer, alone_layer in zip(state, alone_states[i]):
                parts = layer if isinstance(layer, tuple) else (layer,)
                alone_parts = alone_layer if isinstance(alone_layer, tuple) else (alone_layer,)
                for a, b in zip(parts, alone_parts):
                    torch.testing.assert_close(a[i], b[0], rtol=0, atol=1e-12)
        loss = sum((y[i] if readout == "last" else y[i, :n]).square().sum() for i, n in enumerate(LENGTHS))
        loss.backward()
        for got, expected in zip(grads(model), alone_grads):
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_a_padding_bug_would_fail():
    """The test reads padding as junk: a model that ignored lengths would differ from the sequences alone."""
    model = model64("lstm", "last")
    seqs = sequences()
    y_ignored, _ = model(padded(seqs))
    y_alone, _ = model(seqs[1].unsqueeze(0))
    assert not torch.allclose(y_ignored[1], y_alone[0])


@pytest.mark.parametrize(("lengths", "match"), [
    ([5, 2, 0, 1], "sequence 2 has length 0; lengths must be in 1..7"),
    ([5, 2, 8, 1], "sequence 2 has length 8"),
    ([5, 2, 7], "lengths must be 4 whole numbers"),
    ([5.0, 2.0, 7.0, 1.0], "whole numbers"),
])
def test_bad_lengths_are_one_clear_error(lengths, match):
    with pytest.raises(UsageError, match=match):
        model64("gru", "last")(padded(sequences()), lengths=torch.tensor(lengths))
