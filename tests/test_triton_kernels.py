"""The Triton kernels (longrnn.kernels: the LSTM, the GRU, the BRC, the nBRC, the MGU and the PLRNN,
engine="triton") equal the cells' step loops in outputs and gradients, pass gradcheck, and compile for a GPU.

Without a GPU they run under Triton's interpreter, which must be switched on before Triton compiles
anything, so each check runs in a child process with ``TRITON_INTERPRET=1`` (the arithmetic is the
kernels' own; only the execution is emulated). With a GPU the same checks also run on it, compiled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from longrnn.cells import make_cell
from longrnn.errors import UsageError

pytest.importorskip("triton", reason="the gpu extra (triton) is not installed")

SRC = str(Path(__file__).parents[1] / "src")

GRADCHECK = """
import json, sys, warnings
import torch
from longrnn.cells.lstm_sequence import lstm_sequence
from longrnn.cells.kernel_sequences import bistable_sequence, gru_sequence, mgu_sequence, plrnn_sequence
warnings.simplefilter("ignore", RuntimeWarning)
device = sys.argv[1]
ok = {}
for gate in ("sigmoid", "fast", "softsign", "refine"):
    torch.manual_seed(1)
    T, B, H = 3, 2, 3
    NB = 4 if gate == "refine" else 3  # the GRU's gate blocks
    lstm = tuple(a.to(device).requires_grad_() for a in (
        torch.randn(T, B, 4 * H, dtype=torch.float64) * 2, torch.randn(B, H, dtype=torch.float64),
        torch.randn(B, H, dtype=torch.float64), torch.randn(4 * H, H, dtype=torch.float64)))
    ok[f"lstm {gate}"] = torch.autograd.gradcheck(lambda *a: lstm_sequence(*a, gate, "triton"), lstm, fast_mode=True)
    gru = tuple(a.to(device).requires_grad_() for a in (
        torch.randn(T, B, NB * H, dtype=torch.float64) * 2, torch.randn(B, H, dtype=torch.float64),
        torch.randn(NB * H, H, dtype=torch.float64), torch.randn(H, dtype=torch.float64)))
    ok[f"gru {gate}"] = torch.autograd.gradcheck(lambda *a: gru_sequence(*a, gate), gru, fast_mode=True)
for diagonal in (True, False):
    torch.manual_seed(1)
    T, B, H = 3, 2, 3
    recurrent = torch.randn(2 * H, dtype=torch.float64) if diagonal else torch.randn(2 * H, H, dtype=torch.float64)
    args = tuple(a.to(device).requires_grad_() for a in (
        torch.randn(T, B, 3 * H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64), recurrent))
    ok["brc" if diagonal else "nbrc"] = torch.autograd.gradcheck(
        lambda *a: bistable_sequence(*a, diagonal), args, fast_mode=True)
    # engine auto's form: second derivatives recomputed through the step-loop reference
    ok[("brc" if diagonal else "nbrc") + " twice"] = torch.autograd.gradgradcheck(
        lambda *a: bistable_sequence(*a, diagonal, twice_differentiable=True), args, fast_mode=True)
torch.manual_seed(1)
T, B, M = 3, 2, 4
f64 = torch.float64
args = tuple(a.to(device).requires_grad_() for a in (
    torch.randn(T, B, M, dtype=f64), torch.randn(B, M, dtype=f64), torch.rand(M, dtype=f64),
    torch.randn(M, M, dtype=f64) * 0.5, torch.randn(M, dtype=f64)))
ok["plrnn"] = torch.autograd.gradcheck(lambda *a: plrnn_sequence(*a), args, fast_mode=True)
ok["plrnn twice"] = torch.autograd.gradgradcheck(lambda *a: plrnn_sequence(*a, twice_differentiable=True), args,
                                                 fast_mode=True)
args = tuple(a.to(device).requires_grad_() for a in (
    torch.randn(T, B, 2 * M, dtype=f64), torch.randn(B, M, dtype=f64), torch.randn(2 * M, M, dtype=f64)))
ok["mgu"] = torch.autograd.gradcheck(lambda *a: mgu_sequence(*a), args, fast_mode=True)
ok["mgu twice"] = torch.autograd.gradgradcheck(lambda *a: mgu_sequence(*a, twice_differentiable=True), args,
                                               fast_mode=True)
print(json.dumps(ok))
"""

# Each cell with engine="triton" inside a model: its outputs, final state and the gradients of its
# parameters and of the input equal its step loop's under autograd (relative to max(1, max |value|)).
CELL = """
import json, sys, warnings
import torch
from longrnn.cells import make_cell
from longrnn.models import Recurrent
warnings.simplefilter("ignore", RuntimeWarning)
device = sys.argv[1]
found = {}
variants = [(name, {"gate": gate, "forget_init": "chrono:50"}) for name in ("lstm", "gru")
            for gate in ("sigmoid", "fast", "softsign", "refine")] + [("brc", {}), ("nbrc", {}), ("mgu", {})] + [
    ("plrnn", {"init": "identity", "integrators": 0.5, "initial_state": "learned", "output": "relu"}),
    ("plrnn", {"init": "paper"})]
for name, options in variants:
    # (1, 5, 1): one sequence of one step (on a GPU Triton compiles arguments equal to 1 as constants)
    for dtype, B, H, T in ((torch.float64, 3, 5, 9), (torch.float32, 3, 5, 9), (torch.float64, 70, 80, 9),
                           (torch.float64, 1, 5, 1)):
        torch.manual_seed(2)
        cell = make_cell(name, 4, H, engine="triton", **options).to(device, dtype)
        x = torch.randn(B, T, 4, dtype=dtype, device=device)
        results = []
        for fused in (True, False):  # the whole-sequence path (triton), then the step loop
            cell.zero_grad()
            leaf = x.clone().requires_grad_()
            out, state = Recurrent(cell, fused=fused)(leaf)
            last = state[1] if name == "lstm" else state  # c_T for the LSTM, h_T for the GRU
            (out.square().sum() + last.sin().sum()).backward()
            results.append([out, last, leaf.grad, *(p.grad.clone() for p in cell.parameters())])
        found[f"{name} {options.get('gate', options.get('init', ''))} {str(dtype)[6:]} {B} {H} {T}"] = max(
            ((a - b).abs().max() / b.abs().max().clamp(min=1)).item() for a, b in zip(*results))
print(json.dumps(found))
"""

# bfloat16 and float16 inputs are computed in float32: the same cell in bfloat16 gives the float32 run's
# outputs and gradients on the same (bfloat16-representable) weights and inputs, rounded to bfloat16.
HALF = """
import json, sys, warnings
import torch
from longrnn.cells import make_cell
from longrnn.models import Recurrent
warnings.simplefilter("ignore", RuntimeWarning)
device = sys.argv[1]
found = {}
for name, options in (("lstm", {"gate": "fast"}), ("gru", {"gate": "fast"}), ("nbrc", {}), ("mgu", {}),
                      ("plrnn", {"init": "paper"})):
    for half in (torch.bfloat16, torch.float16):
        torch.manual_seed(3)
        cell = make_cell(name, 4, 6, engine="triton", **options).to(device, half)
        x = torch.randn(3, 7, 4, device=device).to(half)
        results = []
        for dtype in (half, torch.float32):
            cell.to(dtype)
            cell.zero_grad()
            leaf = x.to(dtype, copy=True).requires_grad_()
            out, _ = Recurrent(cell, fused=True)(leaf)
            out.float().square().sum().backward()
            results.append([out, leaf.grad, *(p.grad.clone() for p in cell.parameters())])  # before .to
        found[f"{name} {str(half)[6:]}"] = {
            "dtypes": [str(t.dtype)[6:] for t in results[0]],
            "difference": max(((a.float() - b).abs().max() / b.abs().max().clamp(min=1)).item()
                              for a, b in zip(*results))}
print(json.dumps(found))
"""

# Every kernel compiled for an H100 (sm_90) on this CPU by Triton's own compiler, as a GPU would compile it,
# with the launch's options, float64 (the largest tiles in bytes), 64 x 64 tiles: prints each kernel's
# shared memory. The interpreter cannot see what only the compiler rejects (a loop variable reassigned to
# another type, tiles that outgrow shared memory); ptxas, the last stage, is skipped (no CUDA here).
COMPILE_FOR_SM90 = """
import json
import triton
from triton.backends.compiler import GPUTarget
from triton.backends.nvidia.compiler import CUDABackend
from triton.compiler import ASTSource
from longrnn.kernels import bistable, common, gru, lstm, mgu, plrnn

add_stages = CUDABackend.add_stages
def without_ptxas(self, stages, options, *args, **kwargs):
    add_stages(self, stages, options, *args, **kwargs)
    stages["cubin"] = lambda src, metadata: b""
CUDABackend.add_stages = without_ptxas
found = {}
for module in (lstm, gru, bistable, mgu, plrnn):
    for name in (n for n in dir(module) if n.endswith("_kernel")):
        fn = getattr(module, name)
        signature = {arg: "*fp64" if arg.endswith("_ptr") else "i32" if arg in ("T", "B", "H", "M") else "constexpr"
                     for arg in fn.arg_names}
        for gate in (1, 3) if "GATE" in signature else (None,):  # the fast gate and the refine gate
            constants = {arg: {"GATE": gate, "DIAGONAL": False, "BLOCK_B": 64, "BLOCK": 64}[arg]
                         for arg, kind in signature.items() if kind == "constexpr"}
            compiled = triton.compile(ASTSource(fn=fn, signature=signature, constexprs=constants),
                                      target=GPUTarget("cuda", 90, 32), options=common.launch_options(64, 64))
            found[name if gate is None else f"{name} GATE={gate}"] = compiled.metadata.shared
print(json.dumps(found))
"""

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def run_checks(code: str, device: str) -> dict:
    """Run ``code`` in a child process on ``device`` (the CPU through Triton's interpreter); its JSON line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    if device == "cpu":
        env["TRITON_INTERPRET"] = "1"
    done = subprocess.run([sys.executable, "-c", code, device], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("device", DEVICES)
def test_triton_sequences_pass_gradcheck_in_float64(device):
    found = run_checks(GRADCHECK, device)
    gates = ("sigmoid", "fast", "softsign", "refine")
    expected = {f"{name} {gate}": True for gate in gates for name in ("lstm", "gru")}
    others = {name + twice: True for name in ("brc", "nbrc", "plrnn", "mgu") for twice in ("", " twice")}
    assert found == {**expected, **others}


@pytest.mark.parametrize("device", DEVICES)
def test_the_cells_with_the_triton_engine_equal_their_step_loop(device):
    found = run_checks(CELL, device)
    assert len(found) == 52
    for case, difference in found.items():
        assert difference < (1e-12 if "float64" in case else 1e-5), (case, difference)


@pytest.mark.parametrize("name, options", [("lstm", {"gate": "fast"}), ("gru", {"gate": "fast"}), ("nbrc", {})])
def test_the_triton_engine_on_a_cpu_without_the_interpreter_is_a_one_line_error(name, options):
    cell = make_cell(name, 2, 3, engine="triton", **options)
    x = torch.randn(2, 4, 2)
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("the interpreter is on in this process")
    with pytest.raises(UsageError, match="engine 'triton' runs on a CUDA device, not on 'cpu'"):
        cell.fused_forward(x, cell.init_state(2))


@pytest.mark.parametrize("device", DEVICES)
def test_half_precision_is_computed_in_float32_and_returned_in_its_own_dtype(device):
    found = run_checks(HALF, device)
    assert len(found) == 10
    for case, result in found.items():
        half = case.split()[-1]
        assert set(result["dtypes"]) == {half}, (case, result)
        assert result["difference"] < (2e-2 if half == "bfloat16" else 3e-3), (case, result)


def test_the_triton_engine_refuses_integer_inputs():
    from longrnn.cells.kernel_sequences import triton_kernels

    with pytest.raises(UsageError, match="computes in float32 or float64 .* got torch.int64"):
        triton_kernels("gru", torch.device("cpu"), torch.int64)


def test_an_unknown_gru_engine_names_the_allowed_ones():
    with pytest.raises(UsageError, match="unknown engine 'eager'; allowed: auto, cpp, step, triton"):
        make_cell("gru", 2, 3, engine="eager")


def test_every_kernel_compiles_for_a_gpu_within_its_shared_memory():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    env.pop("TRITON_INTERPRET", None)
    done = subprocess.run([sys.executable, "-c", COMPILE_FOR_SM90], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    shared = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(shared) == 14  # ten kernels, the LSTM's and GRU's with two gates each
    for kernel, size in shared.items():
        assert size <= 166912, (kernel, size)  # an A100's most per block (an H100 has 232448)


def test_the_kernels_clamp_the_fast_gate_where_the_gate_function_does():
    from longrnn.functional.gates import FAST_GATE_CLAMP
    from longrnn.kernels.common import FAST_GATE_CLAMP as KERNEL_CLAMP

    assert KERNEL_CLAMP.value == FAST_GATE_CLAMP


def test_train_with_the_triton_engine_on_a_cpu_exits_2_before_making_a_run_directory(tmp_path, capsys):
    from longrnn.cli import main

    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("the interpreter is on in this process")
    code = main(["train", "--task", "adding", "--seq-len", "10", "--cell", "gru", "--gate", "fast", "--engine",
                 "triton", "--steps", "1", "--out", str(tmp_path / "runs")])
    assert code == 2
    assert "engine 'triton' runs on a CUDA device, not on 'cpu'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_the_refine_gates_hand_written_sequence_is_the_triton_engine_only():
    from longrnn.cells.lstm_sequence import lstm_sequence

    x_proj, h0, weight_hh = torch.randn(3, 2, 8), torch.zeros(2, 2), torch.randn(8, 2)
    with pytest.raises(ValueError, match="hand-written sequence is engine 'triton' or 'cpp' only, not 'eager'"):
        lstm_sequence(x_proj, h0, h0, weight_hh, "refine", "eager")
    cell = make_cell("lstm", 2, 3, gate="refine", engine="compiled")  # the step loop runs instead
    assert cell.fused_forward(torch.randn(2, 4, 2), cell.init_state(2)) is None
