"""The kernels' step-loop references (longrnn.cells.sequence_references) equal the cells' step loops; engine
"auto" runs the fused kernels and its gradients can be differentiated again (recomputed through the
references), equal to the step loop's second derivatives; explicit kernel engines refuse a second
derivative with a message naming the engines that allow it; `kernel_engine` picks what "auto" runs."""

from __future__ import annotations

import warnings

import pytest
import torch

from longrnn.cells import kernel_sequences, make_cell
from longrnn.cells.kernel_sequences import gru_sequence, kernel_engine
from longrnn.cells.lstm_sequence import lstm_sequence
from longrnn.cells.sequence_references import (
    bistable_reference,
    gru_reference,
    lstm_reference,
    mgu_reference,
    plrnn_reference,
)
from longrnn.kernels import cpu
from longrnn.models import Recurrent, SequenceModel

F64 = torch.float64
needs_cpp = pytest.mark.skipif(not cpu.available(), reason="the C++ extension cannot be built here")


def step_loop(cell, x, state):
    """(outputs, final state) of the cell's step loop under autograd."""
    return Recurrent(cell, fused=False)(x, state)


def kernel_inputs(name: str, cell, x):
    """What the cell's fused path hands its kernel, time-major, as in each cell's fused_forward."""
    x_proj = cell.project_input(x.transpose(0, 1))
    if name == "lstm":
        return x_proj + cell.bias_hh, cell.weight_hh
    if name == "gru":
        H = cell.hidden_size
        b_rz = cell.bias_hh.clone()
        b_rz[2 * H : 3 * H] = 0
        return x_proj + b_rz, cell.weight_hh, cell.bias_hh[2 * H : 3 * H]
    if name in ("brc", "nbrc"):
        return x_proj, *cell.recurrent_parameter()
    if name == "mgu":
        return x_proj, cell.weight_hh
    return x_proj, cell.A, cell.coupling(), cell.h


@pytest.mark.parametrize("name, options", [
    ("lstm", {"gate": "sigmoid"}), ("lstm", {"gate": "fast"}), ("lstm", {"gate": "refine"}),
    ("gru", {"gate": "softsign"}), ("gru", {"gate": "refine"}),
    ("brc", {}), ("nbrc", {}), ("mgu", {}), ("plrnn", {}),
])
def test_each_reference_equals_its_cells_step_loop(name, options):
    torch.manual_seed(0)
    cell = make_cell(name, 3, 5, **options).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(0.3 * torch.randn_like(p))  # off the initial values (zero biases, unit memories)
    x = torch.randn(2, 6, 3, dtype=F64)
    state = cell.init_state(2, dtype=F64)
    if name == "lstm":
        state = (torch.randn_like(state[0]), torch.randn_like(state[1]))
    else:
        state = torch.randn_like(state)
    expected_out, expected_state = step_loop(cell, x, state)
    inputs = kernel_inputs(name, cell, x)
    if name == "lstm":
        out, h, c = lstm_reference(inputs[0], *state, inputs[1], options["gate"])
        found_state = (h, c)
    elif name == "gru":
        out, found_state = gru_reference(inputs[0], state, *inputs[1:], options["gate"])
    elif name in ("brc", "nbrc"):
        out, found_state = bistable_reference(inputs[0], state, *inputs[1:])
    elif name == "mgu":
        out, found_state = mgu_reference(inputs[0], state, *inputs[1:])
    else:
        out, found_state = plrnn_reference(inputs[0], state, *inputs[1:])
        out = torch.relu(out) if cell.output == "relu" else out
    torch.testing.assert_close(out, expected_out, rtol=1e-12, atol=1e-12)
    for a, b in zip(found_state if name == "lstm" else [found_state], expected_state if name == "lstm"
                    else [expected_state]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def second_derivatives(cell_name, engine, gate):
    """A gradient penalty's gradients: d/dθ |∂L/∂x|², with the first gradient kept differentiable."""
    torch.manual_seed(1)
    model = SequenceModel(cell_name, 2, 5, 1, gate=gate, engine=engine).double()
    x = torch.randn(3, 7, 2, dtype=F64, requires_grad=True)
    loss = model(x)[0].square().sum()
    (grad,) = torch.autograd.grad(loss, x, create_graph=True)
    params = list(model.rnn.parameters()) if hasattr(model, "rnn") else list(model.parameters())
    penalty = torch.autograd.grad(grad.square().sum(), params, allow_unused=True)
    return [loss.detach(), grad.detach(), *(p for p in penalty if p is not None)]


@needs_cpp
@pytest.mark.parametrize("cell_name, gate", [("lstm", "fast"), ("lstm", "softsign"), ("lstm", "refine"),
                                             ("gru", "fast"), ("gru", "refine")])
def test_engine_auto_runs_the_kernel_and_its_second_derivatives_equal_the_step_loops(cell_name, gate, monkeypatch):
    calls = []
    name = f"{cell_name}_forward"
    kernel = getattr(cpu, name)
    monkeypatch.setattr(cpu, name, lambda *a: calls.append(name) or kernel(*a))
    auto = second_derivatives(cell_name, "auto", gate)
    assert calls == [name]  # the forward ran the C++ kernel (the recomputation is the reference's)
    step = second_derivatives(cell_name, "step", gate)
    assert len(auto) == len(step) > 3
    for a, b in zip(auto, step):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@needs_cpp
@pytest.mark.parametrize("gate", ["fast", "refine"])
def test_twice_differentiable_sequences_pass_gradgradcheck(gate):
    torch.manual_seed(2)
    T, B, H = 3, 2, 2
    lstm = tuple(torch.randn(*shape, dtype=F64, requires_grad=True) for shape in
                 ((T, B, 4 * H), (B, H), (B, H), (4 * H, H)))
    assert torch.autograd.gradgradcheck(lambda *a: lstm_sequence(*a, gate, "cpp", twice_differentiable=True), lstm)
    blocks = 4 if gate == "refine" else 3
    gru = tuple(torch.randn(*shape, dtype=F64, requires_grad=True) for shape in
                ((T, B, blocks * H), (B, H), (blocks * H, H), (H,)))
    assert torch.autograd.gradgradcheck(lambda *a: gru_sequence(*a, gate, "cpp", twice_differentiable=True), gru)


@needs_cpp
def test_an_explicit_kernel_engine_refuses_a_second_derivative_naming_the_engines_that_allow_it():
    layer = SequenceModel("gru", 2, 4, 1, gate="fast", engine="cpp")
    x = torch.randn(2, 5, 2, requires_grad=True)
    (grad,) = torch.autograd.grad(layer(x)[0].square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="the GRU with gate 'fast' and engine 'cpp'.*engine 'auto' or 'step'"):
        grad.square().sum().backward()


def test_kernel_engine_picks_what_auto_runs(monkeypatch):
    assert kernel_engine("cpp", "cpu") == "cpp" and kernel_engine("triton", "cuda") == "triton"
    assert kernel_engine("step", "cpu") is None and kernel_engine("compiled", "cpu") is None
    assert kernel_engine("auto", "cpu", cpp=False) is None  # cells without a C++ kernel: the step loop
    assert kernel_engine("auto", "meta") is None
    monkeypatch.setattr(kernel_sequences, "_WARNED", set())
    monkeypatch.setattr(kernel_sequences.importlib.util, "find_spec", lambda name: None)
    with pytest.warns(UserWarning, match=r"engine 'auto' runs without fused kernels on 'cuda'.*longrnn\[gpu\]"):
        assert kernel_engine("auto", "cuda") is None
    monkeypatch.setattr(kernel_sequences.importlib.util, "find_spec", lambda name: object())
    assert kernel_engine("auto", "cuda") == "triton"


def test_without_the_cpp_extension_auto_warns_once_and_runs_the_step_loop(monkeypatch):
    monkeypatch.setattr(kernel_sequences, "_WARNED", set())
    monkeypatch.setattr(cpu, "_BUILT", {"error": "RuntimeError: no compiler"})
    torch.manual_seed(3)
    cell = make_cell("gru", 2, 3, gate="fast").double()
    x = torch.randn(2, 4, 2, dtype=F64)
    with pytest.warns(UserWarning, match=r"on 'cpu'.*could not be built \(RuntimeError: no compiler\)"):
        assert cell.fused_forward(x, cell.init_state(2, dtype=F64)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per device kind: a second call is silent
        assert kernel_engine("auto", "cpu") is None
