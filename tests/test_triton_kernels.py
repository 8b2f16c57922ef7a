"""The Triton LSTM kernels (longrnn.kernels.lstm, engine="triton") equal the hand-written sequence and the
step loop in outputs and gradients.

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

# Prints {"gate dtype B H": [max |difference| / max(1, max |value|) of outputs, h_T, c_T and every
# gradient]} between the triton engine and the eager hand-written sequence (itself tested equal to the
# step loop).
AGAINST_EAGER = """
import json, sys, warnings
import torch
from longrnn.cells.lstm_sequence import lstm_sequence
warnings.simplefilter("ignore", RuntimeWarning)  # the interpreter's exp overflows to inf, as the GPU's does
device = sys.argv[1]
found = {}
for dtype in (torch.float64, torch.float32):
    for gate in ("sigmoid", "fast", "softsign"):
        for B, H in ((3, 5), (70, 80)):  # 70: two programs of 64 sequences; 80: two tiles of 64 units, padded
            torch.manual_seed(0)
            T = 7
            args = [torch.randn(T, B, 4 * H, dtype=dtype) * 3, torch.randn(B, H, dtype=dtype),
                    torch.randn(B, H, dtype=dtype), torch.randn(4 * H, H, dtype=dtype) * 0.5]
            results = []
            for engine in ("eager", "triton"):
                leaves = [a.to(device, copy=True).requires_grad_() for a in args]  # fresh leaves per engine
                out, h, c = lstm_sequence(*leaves, gate, engine)
                (out.square().sum() + 0.5 * h.sum() + c.sin().sum()).backward()
                results.append([out, h, c, *(leaf.grad for leaf in leaves)])
            found[f"{gate} {str(dtype)[6:]} {B} {H}"] = [((a - b).abs().max() / b.abs().max().clamp(min=1)).item()
                                                        for a, b in zip(*results)]
print(json.dumps(found))
"""

GRADCHECK = """
import json, sys, warnings
import torch
from longrnn.cells.lstm_sequence import lstm_sequence
warnings.simplefilter("ignore", RuntimeWarning)
device = sys.argv[1]
ok = {}
for gate in ("sigmoid", "fast", "softsign"):
    torch.manual_seed(1)
    T, B, H = 3, 2, 3
    args = tuple(a.to(device).requires_grad_() for a in (
        torch.randn(T, B, 4 * H, dtype=torch.float64) * 2, torch.randn(B, H, dtype=torch.float64),
        torch.randn(B, H, dtype=torch.float64), torch.randn(4 * H, H, dtype=torch.float64)))
    ok[gate] = torch.autograd.gradcheck(lambda *a: lstm_sequence(*a, gate, "triton"), args, fast_mode=True)
print(json.dumps(ok))
"""

# The cell with engine="triton" inside a model: outputs and parameter gradients equal the step loop's.
CELL = """
import json, sys, warnings
import torch
from longrnn.cells import make_cell
from longrnn.models import Recurrent
warnings.simplefilter("ignore", RuntimeWarning)
device = sys.argv[1]
found = {}
for gate in ("sigmoid", "fast"):
    torch.manual_seed(2)
    cell = make_cell("lstm", 4, 6, gate=gate, engine="triton", forget_init="chrono:50").to(device, torch.float64)
    x = torch.randn(5, 9, 4, dtype=torch.float64, device=device)
    results = []
    for fused in (True, False):  # the cell's whole-sequence path (triton), then its step loop under autograd
        cell.zero_grad()
        out, (h, c) = Recurrent(cell, fused=fused)(x)
        (out.square().sum() + c.sum()).backward()
        results.append([out, c, *(p.grad.clone() for p in cell.parameters())])
    found[gate] = max((a - b).abs().max().item() for a, b in zip(*results))
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
def test_triton_lstm_equals_the_hand_written_sequence(device):
    found = run_checks(AGAINST_EAGER, device)
    assert len(found) == 12
    for case, differences in found.items():
        tolerance = 1e-12 if "float64" in case else 1e-5  # float32: sums of hundreds of rounded terms
        assert max(differences) < tolerance, (case, differences)


@pytest.mark.parametrize("device", DEVICES)
def test_triton_lstm_passes_gradcheck_in_float64(device):
    assert run_checks(GRADCHECK, device) == {"sigmoid": True, "fast": True, "softsign": True}


@pytest.mark.parametrize("device", DEVICES)
def test_the_cell_with_the_triton_engine_equals_its_step_loop(device):
    found = run_checks(CELL, device)
    assert set(found) == {"sigmoid", "fast"}
    assert max(found.values()) < 1e-12, found


def test_the_triton_engine_on_a_cpu_without_the_interpreter_is_a_one_line_error():
    cell = make_cell("lstm", 2, 3, gate="fast", engine="triton")
    x = torch.randn(2, 4, 2)
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("the interpreter is on in this process")
    with pytest.raises(UsageError, match="engine 'triton' runs on a CUDA device, got tensors on 'cpu'"):
        cell.fused_forward(x, cell.init_state(2))


def test_the_triton_engine_refuses_half_precision():
    cell = make_cell("lstm", 2, 3, gate="fast", engine="triton").to(torch.bfloat16)
    x = torch.randn(2, 4, 2, dtype=torch.bfloat16)
    with pytest.raises(UsageError, match="computes in float32 or float64, got torch.bfloat16"):
        cell.fused_forward(x, cell.init_state(2))


def test_the_kernels_clamp_the_fast_gate_where_the_gate_function_does():
    from longrnn.functional.gates import FAST_GATE_CLAMP
    from longrnn.kernels.lstm import FAST_GATE_CLAMP as KERNEL_CLAMP

    assert KERNEL_CLAMP.value == FAST_GATE_CLAMP
