"""GPU check: the LSTM's whole-sequence paths equal the step loop on CUDA (outputs and gradients).

Run on a machine with a GPU: `python scripts/gpu_check.py`. Prints the largest differences.
"""

import torch

from longrnn.cells import make_cell
from longrnn.models import Recurrent


def max_differences(gate: str, engine: str, dtype: torch.dtype) -> tuple[float, float]:
    torch.manual_seed(0)
    cell = make_cell("lstm", 16, 32, gate=gate, engine=engine).to("cuda", dtype)
    x = torch.randn(8, 50, 16, device="cuda", dtype=dtype)
    results = []
    for fused in (True, False):
        cell.zero_grad()
        out, _ = Recurrent(cell, fused=fused)(x)
        out.square().sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in cell.parameters()]))
    (a, ga), (b, gb) = results
    return (a - b).abs().max().item(), max((g - h).abs().max().item() for g, h in zip(ga, gb))


if __name__ == "__main__":
    print(torch.__version__, torch.cuda.get_device_name())
    for dtype in (torch.float64, torch.float32):
        for gate, engine in (("sigmoid", "auto"), ("fast", "eager"), ("fast", "compiled"), ("softsign", "compiled")):
            out, grad = max_differences(gate, engine, dtype)
            print(f"{dtype!s:14s} {gate:8s} {engine:8s} max |output diff| {out:.2e}  max |grad diff| {grad:.2e}")
