"""SequenceModel and the Recurrent loop: shapes, state handling, gradients, O(T) backward."""


import pytest
import torch

from longrnn.cells import available
from longrnn.errors import UsageError
from longrnn.models import Recurrent, SequenceModel

CELLS = sorted(available())


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("readout", ["last", "all"])
def test_shapes_and_final_state(cell, readout):
    torch.manual_seed(0)
    model = SequenceModel(cell, 3, 8, 5, num_layers=2, readout=readout)
    x = torch.randn(4, 7, 3)
    y, final = model(x)
    assert y.shape == ((4, 5) if readout == "last" else (4, 7, 5))
    assert len(final) == 2


@pytest.mark.parametrize("cell", CELLS)
def test_run_in_two_halves_equals_run_at_once(cell):
    """Carrying the final state into the next call continues the same computation."""
    torch.manual_seed(0)
    model = SequenceModel(cell, 3, 8, 2, num_layers=2, readout="all")
    x = torch.randn(4, 10, 3)
    y_all, _ = model(x)
    y1, state = model(x[:, :6])
    y2, _ = model(x[:, 6:], state)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y_all, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_per_step_states_end_in_final_state(cell):
    torch.manual_seed(0)
    model = SequenceModel(cell, 3, 6, 2, num_layers=2)
    x = torch.randn(2, 5, 3)
    y, final, states = model.run(x, return_states=True)
    y_plain, _ = model(x)
    torch.testing.assert_close(y, y_plain, rtol=1e-5, atol=1e-6)
    for layer_states, layer_final in zip(states, final):
        per_step = layer_states if isinstance(layer_states, tuple) else (layer_states,)
        last = layer_final if isinstance(layer_final, tuple) else (layer_final,)
        for s, f in zip(per_step, last):
            assert s.shape[:2] == (2, 5)
            torch.testing.assert_close(s[:, -1], f, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_through_two_layers(cell):
    torch.manual_seed(0)
    model = SequenceModel(cell, 2, 3, 1, num_layers=2, readout="all").double()
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: model(x)[0], (x,))


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    model = SequenceModel("gru", 3, 16, 2, num_layers=2, dropout=0.5)
    x = torch.randn(4, 6, 3)
    model.eval()
    a, _ = model(x)
    b, _ = model(x)
    torch.testing.assert_close(a, b)
    model.train()
    c, _ = model(x)
    assert not torch.allclose(a, c)


def test_bad_arguments_raise_usage_errors():
    with pytest.raises(UsageError, match="readout 'first'"):
        SequenceModel("lstm", 1, 4, 1, readout="first")
    with pytest.raises(UsageError, match="num_layers"):
        SequenceModel("lstm", 1, 4, 1, num_layers=0)
    with pytest.raises(UsageError, match="dropout"):
        SequenceModel("lstm", 1, 4, 1, dropout=1.5)
    model = SequenceModel("lstm", 2, 4, 1)
    with pytest.raises(UsageError, match=r"\(batch, time, 2\)"):
        model(torch.randn(3, 5, 7))
    with pytest.raises(UsageError, match="empty"):
        model(torch.randn(3, 0, 2))


def _backward_allocated_bytes(run, seq_len: int) -> int:
    """Bytes that the ops of one backward allocate (each op's net allocation, counted when positive):
    exact, unlike a timing. Indexing x[:, t] in the loop makes each step's backward allocate a zero
    gradient of the whole input, so this grows as T² instead of T."""
    from torch.profiler import ProfilerActivity, profile

    x = torch.randn(8, seq_len, 4, requires_grad=True)
    loss = run(x).sum()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        loss.backward()
    return sum(max(0, event.self_cpu_memory_usage) for event in prof.events())


def _indexing_loop(cell):
    """The trap, for contrast: the same loop slicing the projected input with xp[:, t]."""
    def run(x):
        state, xp, outputs = cell.init_state(x.shape[0]), cell.project_input(x), []
        for t in range(x.shape[1]):
            h, state = cell.step(xp[:, t], state)
            outputs.append(h)
        return torch.stack(outputs, 1)
    return run


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_backward_is_linear_in_sequence_length(cell):
    """Backward at 2T allocates twice what it does at T (measured 2.0); the x[:, t] loop allocates 4×."""
    from longrnn.cells import make_cell

    torch.manual_seed(0)
    cell = make_cell(cell, 4, 16)
    layer = Recurrent(cell, fused=False)
    ratio = (_backward_allocated_bytes(lambda x: layer(x)[0], 200)
             / _backward_allocated_bytes(lambda x: layer(x)[0], 100))
    assert ratio < 2.5, f"backward allocation grows {ratio:.2f}× from T=100 to T=200"
    trap = _backward_allocated_bytes(_indexing_loop(cell), 200) / _backward_allocated_bytes(_indexing_loop(cell), 100)
    assert trap > 3.0  # the measure does tell the two apart
