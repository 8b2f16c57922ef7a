"""The hand-written LSTM sequence (longrnn.cells.lstm_sequence): gradcheck, and the gate derivatives it uses."""

import warnings

import pytest
import torch

from longrnn.cells import make_cell
from longrnn.cells.lstm_sequence import CompiledOrEager, lstm_sequence, pointwise_backward
from longrnn.errors import UsageError
from longrnn.functional.gates import GATES, gate_with_derivative


@pytest.mark.parametrize("gate", ["sigmoid", "fast", "softsign"])
def test_gate_with_derivative_matches_autograd(gate):
    z = torch.cat([torch.linspace(-30, 30, 241), torch.tensor([0.0, 3.51, -4.3, 19.99, 20.01])]).double()
    z.requires_grad_()
    value, derivative = gate_with_derivative(gate, z.detach())
    (autograd_derivative,) = torch.autograd.grad(GATES[gate](z).sum(), z)
    torch.testing.assert_close(value, GATES[gate](z).detach(), atol=1e-16, rtol=1e-14)
    torch.testing.assert_close(derivative, autograd_derivative, atol=1e-300, rtol=1e-12)
    assert torch.isfinite(gate_with_derivative(gate, torch.tensor([-1e4, 1e4]))[1]).all()


def test_gate_with_derivative_rejects_refine():
    with pytest.raises(ValueError, match="allowed: sigmoid, fast, softsign"):
        gate_with_derivative("refine", torch.zeros(1))


@pytest.mark.parametrize("gate, engine", [("sigmoid", "eager"), ("fast", "eager"), ("softsign", "eager"),
                                          ("fast", "compiled")])
def test_gradcheck(gate, engine):
    torch.manual_seed(0)
    B, T, H = 3, 5, 5
    args = (
        torch.randn(T, B, 4 * H, dtype=torch.float64) * 2,
        torch.randn(B, H, dtype=torch.float64),
        torch.randn(B, H, dtype=torch.float64),
        torch.randn(4 * H, H, dtype=torch.float64),
    )
    args = tuple(a.requires_grad_() for a in args)
    assert torch.autograd.gradcheck(lambda *a: lstm_sequence(*a, gate, engine), args)


def test_only_the_outputs_or_only_the_final_state_carry_gradient():
    """Unused outputs reach backward as None; each case matches the step loop."""
    torch.manual_seed(1)
    cell = make_cell("lstm", 3, 4, gate="fast").double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    state = cell.init_state(2)
    for pick in (lambda out, st: out.sum(), lambda out, st: st[1].sum(), lambda out, st: st[0].sum()):
        fused = torch.autograd.grad(pick(*cell.fused_forward(x, state)), list(cell.parameters()))
        h, c, outputs = *state, []
        for xp in cell.project_input(x).unbind(1):
            out, (h, c) = cell.step(xp, (h, c))
            outputs.append(out)
        looped = torch.autograd.grad(pick(torch.stack(outputs, 1), (h, c)), list(cell.parameters()))
        for a, b in zip(fused, looped, strict=True):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


def test_compile_failure_falls_back_to_eager_with_one_warning():
    calls = []

    def broken(*args):
        calls.append(args)
        raise RuntimeError("no C++ compiler")

    step = CompiledOrEager(pointwise_backward)
    step.compiled = broken
    args = [torch.randn(2, 3) for _ in range(2)] + [torch.randn(2, 12), torch.randn(2, 3), torch.randn(2, 3)]
    with pytest.warns(UserWarning, match="torch.compile failed .*no C\\+\\+ compiler"):
        first = step(*args)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = step(*args)
    assert len(calls) == 1
    for a, b, c in zip(first, second, pointwise_backward(*args), strict=True):
        assert torch.equal(a, c) and torch.equal(b, c)


def test_unknown_engine_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown engine .fastest.; allowed: auto, compiled, cpp, eager, step, triton"):
        make_cell("lstm", 2, 3, engine="fastest")


def test_without_autograd_and_without_a_kernel_the_auto_engine_runs_the_faster_step_loop(monkeypatch):
    from longrnn.cells import kernel_sequences
    from longrnn.kernels import cpu
    from longrnn.models import Recurrent

    monkeypatch.setattr(cpu, "_BUILT", {"error": "RuntimeError: no compiler"})  # no C++ kernel here
    monkeypatch.setattr(kernel_sequences, "_WARNED", {"cpu"})  # its warning said already
    torch.manual_seed(0)
    cell = make_cell("lstm", 3, 8, gate="fast")
    x = torch.randn(2, 9, 3)
    state = cell.init_state(2)
    with torch.no_grad():
        assert cell.fused_forward(x, state) is None
        inference = Recurrent(cell)(x)[0]
    assert cell.fused_forward(x, state) is not None  # with autograd: the compiled hand-written sequence
    torch.testing.assert_close(inference, Recurrent(cell)(x)[0].detach())
    explicit = make_cell("lstm", 3, 8, gate="fast", engine="eager")
    with torch.no_grad():
        assert explicit.fused_forward(x, state) is not None  # an explicit engine is obeyed
