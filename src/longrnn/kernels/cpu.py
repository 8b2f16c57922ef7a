"""The LSTM's and the GRU's whole sequences on a CPU in C++ (``engine="cpp"``): the time loop, one BLAS
product a step and the step's element-wise part as one loop, forward and backward (`csrc/sequences.cpp`).

The functions have the signatures of the Triton kernels' (`longrnn.kernels.lstm`, `longrnn.kernels.gru`,
whose docstrings hold the equations and the hand-written backward), so the autograd functions of
`longrnn.cells.lstm_sequence` and `longrnn.cells.kernel_sequences` serve both engines. The extension is
compiled on first use with `torch.utils.cpp_extension.load` (a C++ compiler, and ninja: the system's or
the ``cpp`` extra's; about half a minute, then cached in torch's extensions directory,
``TORCH_EXTENSIONS_DIR``). `extension` returns None where it cannot be built, and says why in
`build_error`. Large buffers are kept between calls and reused once free (`release_buffers`).
"""

from __future__ import annotations

import os
import platform
import shutil
import threading
from pathlib import Path

import torch

from longrnn.kernels import GATE_CODES

SOURCE = Path(__file__).parent / "csrc" / "sequences.cpp"
_LOCK = threading.Lock()
_BUILT: dict[str, object] = {}


def extension():
    """The compiled extension module, building it on first use; None if it cannot be built (the reason in
    `build_error`)."""
    with _LOCK:
        if "module" not in _BUILT and "error" not in _BUILT:
            try:
                from torch.utils.cpp_extension import load

                _find_ninja()
                name, flags = build_flags()
                _say_if_building(name)
                _BUILT["module"] = load(name=name, sources=[str(SOURCE)], extra_cflags=flags, verbose=False)
            except Exception as e:  # noqa: BLE001 - no compiler, no ninja, a failed build: all mean "not here"
                _BUILT["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        return _BUILT.get("module")


def build_flags() -> tuple[str, list[str]]:
    """(extension name, compiler flags). -ffast-math lets GCC call glibc's vector exp, tanh, sinh and cosh
    in the element-wise loops (within a few ulp of the scalar ones: the tests hold float64 to 1e-12).
    On x86 -mrecip=!div,!vec-div keeps its divisions exact (its reciprocal estimate made σ(z) = 1 - 2^-24
    where it is 1, which the fast gate's cosh(z) then multiplied into gradients 10^8 times too large), and
    the kernels keep exp's argument finite (an infinite exp gave NaN for saturated gates); a test holds
    saturated gates to the step loop. AVX2 and FMA where this CPU has them, with their own extension name,
    so that a cache shared by machines of other kinds never loads code their CPU lacks. What -ffast-math
    still changes: a NaN pre-activation of the fast gate alone may read as a saturated gate (its clamp);
    NaN inputs reach every gate through the product, so the outputs are NaN as in the step loop."""
    flags = ["-O3", "-ffast-math"]
    if platform.machine().lower() in ("x86_64", "amd64"):
        flags.append("-mrecip=!div,!vec-div")
    try:
        cpu_flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        cpu_flags = set()
    if {"avx2", "fma"} <= cpu_flags:
        return "longrnn_cpu_sequences_avx2", [*flags, "-mavx2", "-mfma"]
    return "longrnn_cpu_sequences", flags


def _say_if_building(name: str) -> None:
    """One line on stderr when the extension is about to be compiled (not when it is only loaded)."""
    import sys

    from torch.utils.cpp_extension import _get_build_directory

    try:
        built = (Path(_get_build_directory(name, verbose=False)) / f"{name}.so").exists()
    except Exception:  # noqa: BLE001 - a private helper of torch's; saying nothing is the safe failure
        return
    if not built:
        print("longrnn: building the C++ kernels of engine 'cpp' (once per machine, about half a minute)",
              file=sys.stderr, flush=True)


def _find_ninja() -> None:
    """Put the ``cpp`` extra's ninja on PATH when the system has none (torch's build calls ``ninja``);
    RuntimeError naming the extra when there is neither."""
    if shutil.which("ninja"):
        return
    try:
        import ninja
    except ImportError:
        raise RuntimeError("ninja is not installed; install the extra: pip install 'longrnn[cpp]'") from None
    os.environ["PATH"] = os.pathsep.join([ninja.BIN_DIR, os.environ.get("PATH", "")])


def build_error() -> str | None:
    """Why the extension could not be built (after `extension` returned None), else None."""
    return _BUILT.get("error")


def packed(weight, batch: int):
    """``weight`` (N, K) in oneDNN's layout for products x Wᵀ with ``batch`` rows (float32, where torch has
    oneDNN), which the kernels then use instead of BLAS; else None."""
    if weight.dtype != torch.float32 or not torch.backends.mkldnn.is_available():
        return None
    return torch.ops.mkldnn._reorder_linear_weight(weight, batch)


def lstm_forward(x_proj, h0, c0, weight_hh, gate: str, block: int | None = None, keep: bool = True):
    """As `longrnn.kernels.lstm.lstm_forward` (``block`` is ignored): x_proj (T, B, 4H), h0 and c0 (B, H),
    weight_hh (4H, H), contiguous, float32 or float64, on the CPU. Returns (hs, cs (T + 1, B, H), a (T, B, 4H)).
    ``keep=False`` (no backward follows): cs holds only c_T (1, B, H) and a one step, so that inference
    allocates the outputs alone."""
    return extension().lstm_forward(x_proj, h0, c0, weight_hh, GATE_CODES[gate], packed(weight_hh, h0.shape[0]),
                                    keep)


def lstm_backward(a, cs, weight_hh, grad_outputs, grad_h, grad_c, gate: str, block: int | None = None):
    """As `longrnn.kernels.lstm.lstm_backward`: returns (∂L/∂x_proj (T, B, 4H), ∂L/∂h_0, ∂L/∂c_0)."""
    transposed = packed(weight_hh.t().contiguous(), grad_h.shape[0])
    return extension().lstm_backward(a, cs, weight_hh, grad_outputs, grad_h, grad_c, GATE_CODES[gate], transposed)


def gru_forward(x_proj, h0, weight_hh, bias_hn, gate: str, block: int | None = None, keep: bool = True):
    """As `longrnn.kernels.gru.gru_forward`: x_proj (T, B, NB H), h0 (B, H), weight_hh (NB H, H), bias_hn (H);
    NB = 4 for the refine gate, else 3. Returns (hs (T + 1, B, H), saved (T, B, (NB + 1)H)); ``keep=False``
    (no backward follows): saved holds one step."""
    return extension().gru_forward(x_proj, h0, weight_hh, bias_hn, GATE_CODES[gate], packed(weight_hh, h0.shape[0]),
                                   keep)


def gru_backward(saved, hs, weight_hh, grad_outputs, grad_h, gate: str, block: int | None = None):
    """As `longrnn.kernels.gru.gru_backward`: returns (∂L/∂x_proj, [da_r, da_z, dm(, da_q)], ∂L/∂h_0)."""
    transposed = packed(weight_hh.t().contiguous(), grad_h.shape[0])
    return extension().gru_backward(saved, hs, weight_hh, grad_outputs, grad_h, GATE_CODES[gate], transposed)


def release_buffers() -> None:
    """Drop the large buffers the kernels keep for the next sequence of the same shape (`csrc/sequences.cpp`:
    up to 8, each kept only while nothing else holds it) and return their memory; for a process that
    leaves training and needs the memory back. Nothing to do where the extension was never built."""
    if "module" in _BUILT:
        _BUILT["module"].release_buffers()


def available() -> bool:
    """Whether the extension is built or can be built here (builds it)."""
    return extension() is not None
