"""GPU check: every whole-sequence path (Triton kernels, CUDA graphs) equals the step loop on CUDA (outputs
and gradients), then their speed against cuDNN's LSTM.

Run on a machine with a GPU (and the gpu extra): `python scripts/gpu_check.py`. Prints the largest
differences and two speed tables (`longrnn bench speed --device cuda`); `pytest tests/test_triton_kernels.py
tests/test_graphs.py` runs the kernels' and the graphs' own equality tests on the GPU as well.
"""

import importlib.util

import torch

from longrnn.bench.speed import speed, speed_table
from longrnn.cells import make_cell
from longrnn.models import Recurrent

PATHS = [("lstm", "sigmoid", "auto"), ("lstm", "fast", "eager"), ("lstm", "fast", "compiled"),
         ("lstm", "softsign", "compiled"), ("gru", "sigmoid", "auto")]
if importlib.util.find_spec("triton") is not None:
    PATHS += [(name, gate, "triton") for name in ("lstm", "gru") for gate in ("sigmoid", "fast", "softsign", "refine")]
    PATHS += [(name, None, "triton") for name in ("brc", "nbrc", "mgu", "plrnn")]
PATHS += [(name, None, "graph") for name in ("orthogonal", "conv_unitary")]  # CUDA graphs of the step loop
# the defaults: engine auto runs the Triton kernels on CUDA (the path column names the autograd node)
PATHS += [("lstm", "fast", "auto"), ("gru", "fast", "auto"), ("nbrc", None, "auto"), ("mgu", None, "auto")]


def max_differences(name: str, gate: str | None, engine: str, dtype: torch.dtype) -> tuple[float, float, str]:
    torch.manual_seed(0)
    options = {"gate": gate} if gate else {}
    cell = make_cell(name, 16, 32, engine=engine, **options).to("cuda", dtype)
    x = torch.randn(8, 50, 16, device="cuda", dtype=dtype)
    results, path = [], ""
    for fused in (True, False):
        cell.zero_grad()
        out, _ = Recurrent(cell, fused=fused)(x)
        path = path or type(out.grad_fn).__name__
        out.square().sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in cell.parameters()]))
    (a, ga), (b, gb) = results
    return (a - b).abs().max().item(), max((g - h).abs().max().item() for g, h in zip(ga, gb)), path


if __name__ == "__main__":
    print(torch.__version__, torch.cuda.get_device_name())
    for dtype in (torch.float64, torch.float32):
        for name, gate, engine in PATHS:
            out, grad, path = max_differences(name, gate, engine, dtype)
            print(f"{dtype!s:14s} {name:4s} {gate or '':8s} {engine:8s} max |output diff| {out:.2e}  "
                  f"max |grad diff| {grad:.2e}  path {path}")
    fused = [f"{name}:gate={gate},engine={engine}" if gate else f"{name}:engine={engine}"
             for name, gate, engine in PATHS if engine in ("triton", "graph")]
    variants = ["lstm:gate=fast,engine=compiled", "lstm:gate=fast", "nbrc", "gru", "orthogonal", "conv_unitary", *fused]
    for B, H in ((32, 128), (256, 512)):
        rows = speed(variants, batch_size=B, seq_len=1000, hidden_size=H, device="cuda", quiet=True)
        print(speed_table(rows, f"B={B}, T=1000, H={H}, I=32, fwd+bwd, cuda, against cuDNN's torch.nn.LSTM"))
