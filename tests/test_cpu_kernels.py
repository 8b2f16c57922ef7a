"""The C++ time loops of the LSTM and the GRU (engine="cpp", longrnn.kernels.cpu) equal the cells' step
loops in outputs and every gradient for every gate, pass gradcheck, keep half-precision inputs' dtypes,
learn, and fail with one line where they cannot run."""

from __future__ import annotations

import pytest
import torch

from learning import copy_first_losses
from longrnn.cells import make_cell
from longrnn.cells.kernel_sequences import check_kernel_device, gru_sequence
from longrnn.cells.lstm_sequence import lstm_sequence
from longrnn.errors import UsageError
from longrnn.kernels import cpu
from longrnn.models import Recurrent, SequenceModel

GATES = ("sigmoid", "fast", "softsign", "refine")


@pytest.fixture(scope="module", autouse=True)
def built():
    if not cpu.available():
        pytest.skip(f"the C++ extension cannot be built here: {cpu.build_error()}")


def run(cell, x, fused: bool):
    """Outputs, the final (cell) state, and the gradients of the input and of every parameter."""
    cell.zero_grad()
    leaf = x.clone().requires_grad_()
    out, state = Recurrent(cell, fused=fused)(leaf)
    last = state[1] if isinstance(state, tuple) else state  # c_T for the LSTM, h_T for the GRU
    (out.square().sum() + last.sin().sum()).backward()
    return [out, last, leaf.grad, *(p.grad.clone() for p in cell.parameters())]


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("gate", GATES)
def test_the_cpp_engine_equals_the_step_loop(name, gate):
    for dtype, B, H, T in ((torch.float64, 3, 5, 9), (torch.float32, 7, 33, 20), (torch.float64, 1, 5, 1)):
        torch.manual_seed(2)
        cell = make_cell(name, 4, H, engine="cpp", gate=gate, forget_init="chrono:50").to(dtype)
        x = torch.randn(B, T, 4, dtype=dtype)
        for a, b in zip(run(cell, x, fused=True), run(cell, x, fused=False)):
            difference = ((a - b).abs().max() / b.abs().max().clamp(min=1)).item()
            assert difference < (1e-12 if dtype == torch.float64 else 1e-5), (dtype, B, H, T, difference)


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("gate", GATES)
def test_saturated_gates_and_huge_inputs_stay_finite_and_equal_the_step_loop(name, gate):
    # a closed (or open) keep gate far into saturation, and inputs 1e3 times too large: the sigmoid's
    # exp(-z) overflows in float32 here, which the kernels must not turn into NaN
    for dtype, bias, scale in ((torch.float32, -6.0, 1.0), (torch.float32, 6.0, 1e3), (torch.float64, -30.0, 1e3)):
        torch.manual_seed(4)
        cell = make_cell(name, 4, 8, engine="cpp", gate=gate).to(dtype)
        with torch.no_grad():
            cell.bias_hh[8:16] = bias  # the keep gate's block (the LSTM's f, the GRU's z)
        x = torch.randn(2, 6, 4, dtype=dtype) * scale
        for a, b in zip(run(cell, x, fused=True), run(cell, x, fused=False)):
            assert torch.isfinite(a).all() and torch.isfinite(b).all(), (dtype, bias, scale)
            assert ((a - b).abs().max() / b.abs().max().clamp(min=1)).item() < 1e-4, (dtype, bias, scale)


def test_the_cpp_engine_is_the_path_taken():
    cell = make_cell("gru", 2, 3, gate="fast", engine="cpp")
    outputs, h_n = cell.fused_forward(torch.randn(2, 4, 2), cell.init_state(2))
    assert outputs.shape == (2, 4, 3) and h_n.shape == (2, 3)
    assert outputs.grad_fn is not None and "GRUSequence" in type(outputs.grad_fn).__name__


@pytest.mark.parametrize("gate", GATES)
def test_the_cpp_sequences_pass_gradcheck(gate):
    torch.manual_seed(1)
    T, B, H = 3, 2, 3
    f64 = torch.float64
    lstm = tuple(torch.randn(*shape, dtype=f64, requires_grad=True) for shape in
                 ((T, B, 4 * H), (B, H), (B, H), (4 * H, H)))
    assert torch.autograd.gradcheck(lambda *a: lstm_sequence(*a, gate, "cpp"), lstm, fast_mode=True)
    blocks = 4 if gate == "refine" else 3
    gru = tuple(torch.randn(*shape, dtype=f64, requires_grad=True) for shape in
                ((T, B, blocks * H), (B, H), (blocks * H, H), (H,)))
    assert torch.autograd.gradcheck(lambda *a: gru_sequence(*a, gate, "cpp"), gru, fast_mode=True)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_half_precision_is_computed_in_float32_and_returned_in_its_own_dtype(name):
    torch.manual_seed(3)
    cell = make_cell(name, 4, 6, gate="fast", engine="cpp").to(torch.bfloat16)
    x = torch.randn(3, 7, 4).to(torch.bfloat16)
    half = run(cell, x, fused=True)
    full = run(cell.float(), x.float(), fused=True)
    assert {t.dtype for t in half} == {torch.bfloat16}
    for a, b in zip(half, full):
        assert ((a.float() - b).abs().max() / b.abs().max().clamp(min=1)).item() < 2e-2


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_the_fast_gate_cells_learn_copy_first_with_the_cpp_engine(name):
    before, after = copy_first_losses(
        lambda task: SequenceModel(name, task.input_size, 8, task.output_size, gate="fast", engine="cpp"))
    assert after < 0.5 * before


def test_the_cpp_engine_off_the_cpu_is_a_one_line_error():
    with pytest.raises(UsageError, match="engine 'cpp' runs on the CPU, not on 'cuda'; use engine 'auto'"):
        check_kernel_device("cpp", "cuda")


def test_without_its_extension_the_cpp_engine_says_why(monkeypatch):
    monkeypatch.setattr(cpu, "_BUILT", {"error": "RuntimeError: ninja is not installed; install the extra: "
                                                 "pip install 'longrnn[cpp]'"})
    cell = make_cell("lstm", 2, 3, gate="fast", engine="cpp")
    with pytest.raises(UsageError, match=r"could not be built here \(RuntimeError: ninja is not installed; install the "
                                         r"extra: pip install 'longrnn\[cpp\]'\); use engine 'auto'"):
        cell.fused_forward(torch.randn(2, 4, 2), cell.init_state(2))


def test_train_with_the_cpp_engine_off_the_cpu_exits_2_before_making_a_run_directory(tmp_path, capsys):
    from longrnn.cli import main

    code = main(["train", "--task", "adding", "--seq-len", "10", "--cell", "gru", "--gate", "fast", "--engine",
                 "cpp", "--device", "meta", "--steps", "1", "--out", str(tmp_path / "runs")])
    assert code == 2
    assert "engine 'cpp' runs on the CPU, not on 'meta'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("gate", ["fast", "refine"])
def test_without_autograd_the_cpp_forward_keeps_one_step_and_gives_the_same_outputs(name, gate):
    torch.manual_seed(4)
    cell = make_cell(name, 3, 6, gate=gate, engine="cpp").double()
    x = torch.randn(2, 11, 3, dtype=torch.float64)
    state = cell.init_state(2, dtype=torch.float64)
    recorded = cell.fused_forward(x, state)
    with torch.no_grad():
        inferred = cell.fused_forward(x, state)
    for a, b in zip(torch.utils._pytree.tree_leaves(inferred), torch.utils._pytree.tree_leaves(recorded)):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)
    T, B, H = 11, 2, 6
    blocks = 4 if name == "lstm" or gate == "refine" else 3
    x_proj, h0 = torch.randn(T, B, blocks * H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    weight = torch.randn(blocks * H, H, dtype=torch.float64)
    if name == "lstm":
        hs, cs, a = cpu.lstm_forward(x_proj, h0, h0, weight, gate, keep=False)
        kept = cpu.lstm_forward(x_proj, h0, h0, weight, gate)
        assert cs.shape == (1, B, H) and a.shape == (1, B, blocks * H)
        torch.testing.assert_close(cs[-1], kept[1][-1], rtol=0, atol=0)
    else:
        bias_hn = torch.randn(H, dtype=torch.float64)
        hs, saved = cpu.gru_forward(x_proj, h0, weight, bias_hn, gate, keep=False)
        kept = cpu.gru_forward(x_proj, h0, weight, bias_hn, gate)
        assert saved.shape == (1, B, (blocks + 1) * H)
    assert hs.shape == (T + 1, B, H)
    torch.testing.assert_close(hs, kept[0], rtol=0, atol=0)


def test_large_buffers_come_back_only_when_nothing_holds_them():
    """The kernels keep buffers of 1 MiB and more for the next call of the same shape: a buffer held by a
    tensor or by a view of it is never handed out again; a freed one is, and the numbers do not change."""
    T, B, H = 64, 16, 64  # a: (T, B, 4H) float32 = 1 MiB
    x_proj, h0, weight = torch.randn(T, B, 4 * H), torch.randn(B, H), torch.randn(4 * H, H) * 0.1
    hs, cs, a = cpu.lstm_forward(x_proj, h0, h0, weight, "fast")
    first, expected = a.data_ptr(), hs.clone()
    held = cpu.lstm_forward(x_proj, h0, h0, weight, "fast")
    assert held[2].data_ptr() != first and held[0].data_ptr() != hs.data_ptr()
    view = a[3:]
    del hs, cs, a
    again = cpu.lstm_forward(x_proj, h0, h0, weight, "fast")
    assert again[2].data_ptr() != first  # the view still holds it
    del view, again
    reused = cpu.lstm_forward(x_proj, h0, h0, weight, "fast")
    assert first in {t.data_ptr() for t in reused}
    torch.testing.assert_close(reused[0], expected, rtol=0, atol=0)
    del held, reused
    cpu.release_buffers()


def test_training_steps_on_kept_buffers_give_the_same_gradients_as_the_first():
    torch.manual_seed(5)
    cell = make_cell("lstm", 8, 64, gate="softsign", engine="cpp")
    model = Recurrent(cell, fused=True)
    x = torch.randn(16, 80, 8)
    grads = []
    for _ in range(3):
        model.zero_grad()
        out, _ = model(x)
        out.square().mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for later in grads[1:]:
        for a, b in zip(later, grads[0]):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
