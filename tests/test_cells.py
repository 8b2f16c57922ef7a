"""Tests of the cells: the protocol, parity with torch's cells and fused kernels, gradients, inits, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

from longrnn.cells import Cell, available, make_cell
from longrnn.errors import UsageError

CELL_NAMES = sorted(available())
FUSED_CASES = [
    ("lstm", {}),
    ("lstm", {"forget_init": "chrono:50"}),
    ("lstm", {"gate": "fast"}),  # hand-written sequence (longrnn.cells.lstm_sequence), compiled
    ("lstm", {"gate": "fast", "forget_init": "constant:4", "engine": "eager"}),  # gates near saturation
    ("lstm", {"gate": "softsign", "forget_init": "uniform", "engine": "eager"}),
    ("lstm", {"engine": "compiled"}),  # the sigmoid gate on the hand-written sequence
    ("gru", {}),
    ("gru", {"forget_init": "uniform"}),
    ("rnn", {}),
    ("rnn", {"bias": False}),
    ("irnn", {}),
    ("irnn", {"init_scale": 0.5}),
]
TORCH_CELLS = {
    "lstm": lambda i, h, **kw: nn.LSTMCell(i, h, **kw),
    "gru": lambda i, h, **kw: nn.GRUCell(i, h, **kw),
    "rnn": lambda i, h, **kw: nn.RNNCell(i, h, nonlinearity="tanh", **kw),
    "irnn": lambda i, h, **kw: nn.RNNCell(i, h, nonlinearity="relu", **kw),
}


def step_loop(cell: Cell, x: torch.Tensor, state):
    """The loop `longrnn.models.Recurrent` runs: project once, then step over ``unbind(1)``."""
    outputs = []
    with nn.utils.parametrize.cached():
        for xp_t in cell.project_input(x).unbind(1):
            h, state = cell.step(xp_t, state)
            outputs.append(h)
    return torch.stack(outputs, 1), state


def as_tuple(state) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def random_state(cell: Cell, batch: int, dtype=torch.float32):
    return tuple(torch.randn_like(s) for s in as_tuple(cell.init_state(batch, dtype=dtype)))


def unpack(cell: Cell, parts: tuple[torch.Tensor, ...]):
    """A state in the cell's own structure from a tuple of tensors."""
    return parts if isinstance(cell.init_state(1), tuple) else parts[0]


def scalar_loss(outputs: torch.Tensor, final_state) -> torch.Tensor:
    """A loss that weights every output and final-state entry differently (deterministic weights)."""
    total = (outputs * torch.linspace(-1, 1, outputs.numel()).view_as(outputs)).sum()
    for s in as_tuple(final_state):
        total = total + (s * torch.linspace(1, 2, s.numel()).view_as(s)).sum()
    return total


def assert_close_all(actual, expected, atol=1e-5, rtol=1e-5):
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, atol=atol, rtol=rtol)


# --- registry and protocol -------------------------------------------------------------------------


def test_registry_names_and_descriptions():
    assert {"lstm", "gru", "rnn", "irnn", "orthogonal"} <= set(CELL_NAMES)
    assert all(isinstance(d, str) and d for d in available().values())


@settings(max_examples=20, deadline=None)
@given(
    name=st.sampled_from(CELL_NAMES),
    batch=st.integers(1, 3),
    input_size=st.integers(1, 4),
    hidden_size=st.integers(1, 5),
)
def test_protocol(name, batch, input_size, hidden_size):
    torch.manual_seed(0)
    cell = make_cell(name, input_size, hidden_size)
    assert isinstance(cell, Cell)
    assert (cell.input_size, cell.hidden_size) == (input_size, hidden_size)

    state = cell.init_state(batch)
    for s in as_tuple(state):
        assert s.shape == (batch, hidden_size) and s.dtype == torch.float32 and not s.any()
    for s in as_tuple(cell.init_state(batch, device=torch.device("cpu"), dtype=torch.float64)):
        assert s.dtype == torch.float64 and s.device.type == "cpu"

    x_t = torch.randn(batch, input_size)
    state = unpack(cell, random_state(cell, batch))
    h, new_state = cell.step(cell.project_input(x_t), state)
    assert h.shape == (batch, cell.output_size)
    assert type(new_state) is type(state)
    assert [s.shape for s in as_tuple(new_state)] == [s.shape for s in as_tuple(state)]

    h2, state2 = cell(x_t, state)
    assert_close_all((h2, *as_tuple(state2)), (h, *as_tuple(new_state)), atol=0, rtol=0)

    x = torch.randn(batch, 3, input_size)  # project_input works on any leading shape
    assert cell.project_input(x)[:, 1].shape == cell.project_input(x_t).shape


def test_init_state_follows_parameter_dtype():
    for name in CELL_NAMES:
        cell = make_cell(name, 2, 3).double()
        assert all(s.dtype == torch.float64 for s in as_tuple(cell.init_state(2)))


# --- parity with torch's cells ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, options", [("lstm", {}), ("gru", {}), ("rnn", {}), ("irnn", {}), ("rnn", {"bias": False})]
)
def test_matches_torch_cells(name, options):
    torch.manual_seed(1)
    batch, input_size, hidden_size, steps = 3, 4, 5, 4
    cell = make_cell(name, input_size, hidden_size, **options)
    reference = TORCH_CELLS[name](input_size, hidden_size, **options)
    reference.load_state_dict(cell.state_dict())  # same parameter names and shapes

    x = torch.randn(batch, steps, input_size)
    state = random_state(cell, batch)
    outputs, final = step_loop(cell, x, unpack(cell, state))

    ref_state = state if name == "lstm" else state[0]
    ref_outputs = []
    for x_t in x.unbind(1):
        ref_state = reference(x_t, ref_state)
        ref_outputs.append(ref_state[0] if name == "lstm" else ref_state)
    ref_outputs = torch.stack(ref_outputs, 1)
    assert_close_all((outputs, *as_tuple(final)), (ref_outputs, *as_tuple(ref_state)))

    grads = torch.autograd.grad(scalar_loss(outputs, final), list(cell.parameters()))
    ref_grads = torch.autograd.grad(scalar_loss(ref_outputs, ref_state), list(reference.parameters()))
    assert_close_all(grads, ref_grads)


# --- fused kernels ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name, options", FUSED_CASES)
def test_fused_forward_matches_step_loop(name, options, dtype):
    torch.manual_seed(2)
    batch, input_size, hidden_size, steps = 3, 4, 5, 6
    cell = make_cell(name, input_size, hidden_size, **options).to(dtype)
    x = torch.randn(batch, steps, input_size, dtype=dtype, requires_grad=True)
    state = tuple(s.requires_grad_() for s in random_state(cell, batch, dtype))
    wrt = [x, *state, *cell.parameters()]
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 1e-10}

    fused = cell.fused_forward(x, unpack(cell, state))
    assert fused is not None
    looped = step_loop(cell, x, unpack(cell, state))
    assert type(fused[1]) is type(looped[1])
    assert_close_all((fused[0], *as_tuple(fused[1])), (looped[0], *as_tuple(looped[1])), **tol)

    fused_grads = torch.autograd.grad(scalar_loss(*fused), wrt)
    looped_grads = torch.autograd.grad(scalar_loss(*looped), wrt)
    assert_close_all(fused_grads, looped_grads, **tol)


def test_orthogonal_has_no_fused_kernel():
    cell = make_cell("orthogonal", 2, 3)
    assert cell.fused_forward(torch.randn(1, 2, 2), cell.init_state(1)) is None


@pytest.mark.parametrize("name, gate", [("lstm", "refine"), ("gru", "fast"), ("gru", "softsign"), ("gru", "refine")])
def test_other_gates_change_the_cell_and_leave_torchs_kernel(name, gate):
    """Gates other than the sigmoid are not torch's fused kernel: engine auto runs this project's kernel
    (equal to the step loop), engine step the step loop alone; and they compute something else."""
    x = torch.randn(2, 4, 2)
    torch.manual_seed(3)
    standard = make_cell(name, 2, 3)
    torch.manual_seed(3)
    other = make_cell(name, 2, 3, gate=gate)
    assert standard.has_fused_kernel and not other.has_fused_kernel
    fused = other.fused_forward(x, other.init_state(2))
    if fused is not None:  # no kernel builds here: the step loop runs, which is also right
        assert "Sequence" in type(fused[0].grad_fn).__name__
        assert_close_all((fused[0],), (step_loop(other, x, other.init_state(2))[0],), atol=1e-5, rtol=1e-5)
    other.engine = "step"
    assert other.fused_forward(x, other.init_state(2)) is None
    with torch.no_grad():
        a = step_loop(standard, x, standard.init_state(2))[0]
        b = step_loop(other, x, other.init_state(2))[0]
    assert not torch.allclose(a, b)


# --- gradients -------------------------------------------------------------------------------------


class _Unrolled(nn.Module):
    """The step loop as a module, so `functional_call` can swap in float64 leaf parameters."""

    def __init__(self, cell: Cell):
        super().__init__()
        self.cell = cell

    def forward(self, x, *state):
        outputs, final = step_loop(self.cell, x, unpack(self.cell, state))
        return (outputs, *as_tuple(final))


@pytest.mark.parametrize("name", CELL_NAMES)
def test_gradcheck_step_loop(name):
    torch.manual_seed(4)
    batch, input_size, hidden_size, steps = 2, 3, 4, 3
    options = {"init_scale": 0.9} if name == "irnn" else {}
    model = _Unrolled(make_cell(name, input_size, hidden_size, **options).double())
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    x = torch.randn(batch, steps, input_size, dtype=torch.float64, requires_grad=True)
    # Keep ReLU / modReLU pre-activations away from their kinks so finite differences are valid.
    state = tuple((s + 0.5).requires_grad_() for s in random_state(model.cell, batch, torch.float64))

    n_state = len(state)

    def run(x, *rest):
        return functional_call(model, dict(zip(names, rest[n_state:])), (x, *rest[:n_state]))

    inputs = (x, *state, *params)
    # Every input must matter (gradcheck alone would pass on a parameter that is never used). Weighted
    # sums: a plain sum can be blind to a parameter (conv_unitary's kernel keeps the spatial sum).
    weighted = [(out * torch.linspace(-1, 2, out.numel(), dtype=out.dtype).view_as(out)).sum() for out in run(*inputs)]
    grads = torch.autograd.grad(sum(weighted), inputs)
    assert all(g.abs().sum() > 0 for g in grads)
    assert torch.autograd.gradcheck(run, inputs, eps=1e-6, atol=1e-5)


# --- initialisation and options ----------------------------------------------------------------------


def test_irnn_initialisation():
    torch.manual_seed(5)
    cell = make_cell("irnn", 50, 8)
    torch.testing.assert_close(cell.weight_hh, torch.eye(8))
    assert not cell.bias_ih.any() and not cell.bias_hh.any()
    assert cell.weight_ih.abs().max() < 0.01 and 0.0005 < cell.weight_ih.std() < 0.002
    torch.testing.assert_close(make_cell("irnn", 2, 3, init_scale=0.5).weight_hh, 0.5 * torch.eye(3))


def test_rnn_default_init_bounds_and_bias_option():
    cell = make_cell("rnn", 4, 16)
    assert all(p.abs().max() <= 0.25 for p in cell.parameters())
    no_bias = make_cell("rnn", 4, 16, bias=False)
    assert no_bias.bias_ih is None and len(list(no_bias.parameters())) == 2


def test_lstm_constant_forget_init_is_set_once_in_the_forget_block():
    torch.manual_seed(6)
    plain = make_cell("lstm", 2, 3)
    torch.manual_seed(6)
    shifted = make_cell("lstm", 2, 3, forget_init="constant:1.0")
    torch.testing.assert_close(shifted.bias_hh[3:6], torch.ones(3), check_device=False)
    torch.testing.assert_close(shifted.bias_ih[3:6], torch.zeros(3), check_device=False)
    keep = torch.ones(12, dtype=torch.bool)
    keep[3:6] = False
    torch.testing.assert_close(shifted.bias_hh[keep], plain.bias_hh[keep])
    torch.testing.assert_close(shifted.bias_ih[keep], plain.bias_ih[keep])


@pytest.mark.parametrize(
    "options", [{}, {"orthogonal_map": "cayley"}, {"orthogonal_map": "householder"}, {"nonlinearity": "tanh"}]
)
def test_orthogonal_stays_orthogonal_under_adam(options):
    torch.manual_seed(7)
    cell = make_cell("orthogonal", 3, 6, **options)
    optimizer = torch.optim.Adam(cell.parameters(), lr=0.05)
    before = cell.recurrent_weight.detach().clone()
    x, target = torch.randn(4, 5, 3), torch.randn(4, 6)
    for _ in range(5):
        optimizer.zero_grad()
        outputs, _ = step_loop(cell, x, cell.init_state(4))
        ((outputs[:, -1] - target) ** 2).mean().backward()
        optimizer.step()
    w = cell.recurrent_weight.detach()
    torch.testing.assert_close(w.T @ w, torch.eye(6), atol=1e-5, rtol=0)
    assert not torch.allclose(w, before)  # it did learn


def test_orthogonal_nonlinearity_options():
    modrelu = make_cell("orthogonal", 2, 3)
    assert modrelu.input_kernel.bias is None and modrelu.activation.bias.abs().max() <= 0.01
    tanh = make_cell("orthogonal", 2, 3, nonlinearity="tanh")
    assert tanh.input_kernel.bias is not None
    h, _ = tanh(torch.full((1, 2), 100.0), tanh.init_state(1))
    assert h.abs().max() <= 1


# --- errors ------------------------------------------------------------------------------------------


def test_unknown_cell_name():
    with pytest.raises(UsageError) as info:
        make_cell("lstn", 1, 2)
    message = str(info.value)
    assert "lstn" in message and all(name in message for name in CELL_NAMES)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_unknown_option(name):
    with pytest.raises(UsageError, match="colour"):
        make_cell(name, 1, 2, colour="red")


@pytest.mark.parametrize("hidden_size", [0, -3, 2.5])
def test_non_positive_hidden_size(hidden_size):
    with pytest.raises(UsageError, match="hidden_size"):
        make_cell("rnn", 1, hidden_size)


@pytest.mark.parametrize("option, value", [("orthogonal_map", "qr"), ("nonlinearity", "relu")])
def test_orthogonal_bad_choices(option, value):
    with pytest.raises(UsageError) as info:
        make_cell("orthogonal", 2, 3, **{option: value})
    assert value in str(info.value) and "allowed" in str(info.value)


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_xavier_orthogonal_init_is_the_warm_up_codes(name):
    torch.manual_seed(0)
    cell = make_cell(name, 5, 16, weight_init="xavier_orthogonal")
    blocks = cell.n_blocks
    for block in cell.weight_hh.detach().double().chunk(blocks, 0):  # each recurrent block orthogonal
        assert torch.allclose(block @ block.T, torch.eye(16, dtype=torch.float64), atol=1e-5)
    bound = math.sqrt(6 / (5 + 16))  # Xavier-uniform of each (H, I) input block
    for block in cell.weight_ih.detach().chunk(blocks, 0):
        assert block.abs().max() <= bound and block.abs().max() > 0.8 * bound
    assert not cell.bias_ih.any() and not cell.bias_hh.any()
    chrono = make_cell(name, 5, 16, weight_init="xavier_orthogonal", forget_init="chrono:100")
    assert chrono.bias_hh.any(), "forget_init still sets the keep gate's bias over the zero biases"
    default = make_cell(name, 5, 16)
    assert default.bias_hh.abs().max() <= 1 / 4 and default.bias_hh.any()  # PyTorch's U(-1/√H, 1/√H)
    with pytest.raises(UsageError, match="unknown weight_init 'xavier'"):
        make_cell(name, 5, 16, weight_init="xavier")


def test_irnn_input_init_le_et_al_and_the_rplrnn_benchmark_codes():
    torch.manual_seed(0)
    le = make_cell("irnn", 400, 40)  # Le et al. 2015: N(0, 0.001²)
    official = make_cell("irnn", 400, 40, input_std=1 / 40)  # reg-PLRNN's comparison_models.py: randn / M
    for cell, std in ((le, 0.001), (official, 1 / 40)):
        assert cell.weight_ih.std().item() == pytest.approx(std, rel=0.05)
        assert torch.equal(cell.weight_hh, torch.eye(40)) and not cell.bias_ih.any() and not cell.bias_hh.any()
    with pytest.raises(UsageError, match="input_std must be a finite number >= 0, got -1"):
        make_cell("irnn", 4, 4, input_std=-1)
