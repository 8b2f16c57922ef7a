"""Gate functions (fast, sigmoid, softsign, refine) and the gated cells' gate options."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from longrnn.cells import make_cell
from longrnn.cells.init import forget_biases, parse_forget_init
from longrnn.errors import UsageError
from longrnn.functional.gates import GATES, fast_gate, gate_bias, refine_gate, softsign_gate
from longrnn.models import SequenceModel

finite = st.floats(-50, 50, allow_nan=False)


# --- the gate functions ---------------------------------------------------------------------------


def test_fast_gate_derivative_is_the_closed_form():
    """φ'(z) = cosh(z) φ(z) (1 - φ(z)) for φ = σ ∘ sinh."""
    z = torch.linspace(-6, 6, 241, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(fast_gate(z).sum(), z)
    phi = fast_gate(z.detach())
    torch.testing.assert_close(grad, torch.cosh(z.detach()) * phi * (1 - phi))
    assert torch.autograd.gradcheck(fast_gate, (z[::20].detach().clone().requires_grad_(),))


@settings(max_examples=60, deadline=None)
@given(z=finite)
@pytest.mark.parametrize("name", sorted(GATES))
def test_gates_are_symmetric(name, z):
    """φ(-z) = 1 - φ(z)."""
    t = torch.tensor(z, dtype=torch.float64)
    assert float(GATES[name](-t)) == pytest.approx(1 - float(GATES[name](t)), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(z=st.floats(1.0, 3.5))
def test_fast_gate_saturates_doubly_exponentially(z):
    """log(1 - φ(z)) ≈ -sinh(z) ≈ -e^z/2: the log of the gap itself falls exponentially."""
    t = torch.tensor(z, dtype=torch.float64)
    gap = float(1 - fast_gate(t))
    assert math.log(gap) == pytest.approx(-math.log1p(math.exp(math.sinh(z))), rel=1e-9)
    # ... which beats the sigmoid's single exponential e^-z and the softsign's 1/(2(1+z)) by far
    assert gap < float(1 - torch.sigmoid(t)) and gap < float(1 - softsign_gate(t))


def test_softsign_is_the_normalized_softsign():
    z = torch.tensor([-3.0, -0.5, 0.0, 2.0])
    torch.testing.assert_close(softsign_gate(z), (1 + torch.nn.functional.softsign(z)) / 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_gate_has_no_nan_or_inf_up_to_1e4(dtype):
    z = torch.tensor([-1e4, -1e3, -89.5, -20.0, 0.0, 20.0, 89.5, 1e3, 1e4], dtype=dtype, requires_grad=True)
    y = fast_gate(z)
    (grad,) = torch.autograd.grad(y.sum(), z)
    assert torch.isfinite(y).all() and torch.isfinite(grad).all()
    assert y[0] == 0 and y[-1] == 1


def test_fast_gate_clamp_changes_no_float32_value():
    z = torch.linspace(-40, 40, 8001)
    unclamped = torch.sigmoid(torch.sinh(z))
    assert torch.equal(fast_gate(z), unclamped)


def test_refine_gate_range_and_identity():
    f = torch.rand(1000, dtype=torch.float64)
    r = torch.rand(1000, dtype=torch.float64)
    g = refine_gate(f, r)
    assert (g >= f**2 - 1e-12).all() and (g <= 2 * f - f**2 + 1e-12).all()
    torch.testing.assert_close(g, 2 * r * f + (1 - 2 * r) * f**2)
    torch.testing.assert_close(refine_gate(f, torch.full_like(f, 0.5)), f)  # r = 1/2 leaves f as it is


@settings(max_examples=40, deadline=None)
@given(b=st.floats(-12, 12))
@pytest.mark.parametrize("name", sorted(GATES))
def test_gate_bias_gives_the_sigmoid_gate_value(name, b):
    mapped = gate_bias(name, torch.tensor([b], dtype=torch.float64))
    assert float(GATES[name](mapped)) == pytest.approx(1 / (1 + math.exp(-b)), rel=1e-9, abs=1e-12)


# --- forget_init -----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["chrono", "chrono:2", "constant:", "constant:x", "uniform:3", "warm", 7])
def test_bad_forget_init_names_the_allowed_forms(spec):
    with pytest.raises(UsageError, match="chrono:T_MAX"):
        parse_forget_init(spec)


def test_chrono_biases_are_log_uniform():
    torch.manual_seed(0)
    b = forget_biases("chrono:1000", 20000)
    timescales = b.exp()  # e^b ~ U[1, T_max - 1]
    assert timescales.min() >= 1 and timescales.max() <= 999
    assert float(timescales.mean()) == pytest.approx(500, rel=0.02)
    assert float((timescales < 250).float().mean()) == pytest.approx(249 / 998, abs=0.015)


def test_uniform_biases_spread_gate_values_evenly():
    torch.manual_seed(0)
    d = 20000
    f = torch.sigmoid(forget_biases("uniform", d))
    assert f.min() >= 1 / d and f.max() <= 1 - 1 / d
    for q in (0.1, 0.5, 0.9):
        assert float(torch.quantile(f, q)) == pytest.approx(q, abs=0.015)


@pytest.mark.parametrize("gate", ["sigmoid", "fast", "softsign"])
def test_lstm_chrono_sets_forget_once_and_input_to_minus(gate):
    torch.manual_seed(1)
    cell = make_cell("lstm", 3, 50, gate=gate, forget_init="chrono:100")
    H = 50
    forget = GATES[gate](cell.bias_hh[H : 2 * H].detach())
    timescales = 1 / (1 - torch.sigmoid(torch.logit(forget.double())))
    assert (cell.bias_ih[H : 2 * H] == 0).all() and (cell.bias_ih[:H] == 0).all()
    assert timescales.min() >= 2 - 1e-6 and timescales.max() <= 100 + 1e-3  # e^b + 1 in [2, T_max]
    sigmoid_space = torch.logit(forget.double())
    torch.testing.assert_close(cell.bias_hh[:H].detach().double(), -sigmoid_space, rtol=1e-4, atol=1e-4)


def test_chrono_input_off_keeps_the_input_gate_at_pytorch_init():
    torch.manual_seed(1)
    plain = make_cell("lstm", 3, 50)
    torch.manual_seed(1)
    cell = make_cell("lstm", 3, 50, forget_init="chrono:100", chrono_input=False)
    H = 50
    torch.testing.assert_close(cell.bias_hh[:H], plain.bias_hh[:H])  # input gate: untouched
    torch.testing.assert_close(cell.bias_ih[:H], plain.bias_ih[:H])
    assert (cell.bias_hh[H : 2 * H] >= 0).all() and (cell.bias_ih[H : 2 * H] == 0).all()  # forget: chrono
    with pytest.raises(UsageError, match="chrono_input"):
        make_cell("lstm", 3, 5, chrono_input="no")


def test_gate_parity_off_keeps_raw_biases():
    torch.manual_seed(2)
    a = make_cell("lstm", 3, 8, gate="fast", forget_init="constant:1.0", gate_parity=False)
    torch.manual_seed(2)
    b = make_cell("lstm", 3, 8, gate="fast", forget_init="constant:1.0")
    assert torch.allclose(a.bias_hh[8:16], torch.ones(8))
    assert torch.allclose(b.bias_hh[8:16], torch.full((8,), math.asinh(1.0)))


def test_refine_lstm_is_the_ur_lstm_layout():
    torch.manual_seed(3)
    cell = make_cell("lstm", 3, 6, gate="refine", forget_init="uniform")
    assert cell.weight_ih.shape == (24, 3)  # same parameter count as the LSTM: r takes i's block
    torch.testing.assert_close(cell.bias_hh[:6], -cell.bias_hh[6:12])  # r's bias is -b_f (Gu et al.)
    x_proj = cell.project_input(torch.randn(2, 3))
    state = (torch.randn(2, 6), torch.randn(2, 6))
    _, (_, c) = cell.step(x_proj, state)
    a_i, a_f, a_g, _ = cell.preactivations(x_proj, state[0])
    g = refine_gate(torch.sigmoid(a_f), torch.sigmoid(a_i))
    torch.testing.assert_close(c, g * state[1] + (1 - g) * torch.tanh(a_g))


def test_refine_gru_adds_a_fourth_block():
    cell = make_cell("gru", 3, 6, gate="refine", forget_init="chrono:10")
    assert cell.weight_ih.shape == (24, 3) and cell.weight_hh.shape == (24, 6)
    torch.testing.assert_close(cell.bias_hh[18:24], -cell.bias_hh[6:12])


def test_unknown_gate_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown gate 'slow'; allowed: fast, refine, sigmoid, softsign"):
        make_cell("lstm", 1, 2, gate="slow")
    with pytest.raises(UsageError, match="cell 'rnn' has no option 'gate'"):
        make_cell("rnn", 1, 2, gate="fast")


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("gate", ["fast", "softsign", "refine"])
def test_gradcheck_every_gate(name, gate):
    torch.manual_seed(4)
    model = SequenceModel(name, 2, 3, 1, readout="all", gate=gate, forget_init="chrono:8").double()
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: model(x)[0], (x,))


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("gate", ["sigmoid", "fast", "softsign", "refine"])
def test_every_gate_option_trains(name, gate):
    """Adam on fresh batches of copy_first (T=5) learns to recall the first input: on the held-out
    validation set the error falls far below the memoryless baseline's (fitting one batch would not: the
    task's answer is in the first step only)."""
    from longrnn.tasks import make_task

    torch.manual_seed(5)
    task = make_task("copy_first", seq_len=5, validation_size=256)
    generator = torch.Generator().manual_seed(0)
    model = SequenceModel(name, 1, 16, 1, gate=gate)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(150):
        x, y = task.sample(64, generator)
        loss = task.loss(model(x)[0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x_val, y_val = task.validation_set()
    with torch.no_grad():
        error = task.metrics(model(x_val)[0], y_val)[task.main_metric]
    assert error < 0.2 * task.baseline("validation")[task.main_metric]


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("gate", ["sigmoid", "fast"])
def test_gates_and_state_stay_float32_under_autocast(name, gate):
    cell = make_cell(name, 3, 8, gate=gate)
    x = torch.randn(4, 6, 3)
    model = SequenceModel(name, 3, 8, 1, gate=gate)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not cell.has_fused_kernel
        state = cell.init_state(4)
        xp = cell.project_input(x)
        assert xp.dtype == torch.bfloat16
        _, state = cell.step(xp[:, 0], state)
        states = state if isinstance(state, tuple) else (state,)
        assert all(s.dtype == torch.float32 for s in states)
        prev = cell.init_state(4)
        assert cell.forget_gate_values(xp[:, 0], prev).dtype == torch.float32
        y, _ = model(x)
        assert torch.isfinite(y).all()
