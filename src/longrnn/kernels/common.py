"""What the fused kernels share: tanh and the single-input gates with their derivatives, in Triton (the
closed forms of `longrnn.functional.gates.gate_with_derivative`, tested equal through the kernels), the
tile sizes, and the launch."""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

# functional.gates.FAST_GATE_CLAMP (a test holds them equal; functional is this room's neighbour, not below)
FAST_GATE_CLAMP = tl.constexpr(20.0)  # σ(sinh z) is exactly 0 or 1 beyond it


@triton.jit
def tanh(x):
    """tanh(x) = 2σ(2x) - 1 (exact at ±inf; the interpreter has no tanh of its own)."""
    return 2.0 * tl.sigmoid(2.0 * x) - 1.0


@triton.jit
def forget_gate(z, GATE: tl.constexpr):
    """(φ(z), φ'(z)) for GATE 0 sigmoid σ(z), 1 fast σ(sinh z) (Ohno et al. 2023), 2 normalized softsign
    (1 + z/(1+|z|))/2 — the closed forms of `longrnn.functional.gates.gate_with_derivative`."""
    if GATE == 0:
        f = tl.sigmoid(z)
        df = f * (1.0 - f)
    elif GATE == 1:
        zc = tl.minimum(tl.maximum(z, -FAST_GATE_CLAMP), FAST_GATE_CLAMP)
        ep, en = tl.exp(zc), tl.exp(-zc)
        f = tl.sigmoid(0.5 * (ep - en))
        df = f * (1.0 - f) * 0.5 * (ep + en)
    else:
        d = 1.0 / (1.0 + tl.abs(z))
        f = 0.5 * (1.0 + z * d)
        df = 0.5 * d * d
    return f, df


@triton.jit
def keep_gate(z, z_refine, GATE: tl.constexpr):
    """(g, ∂g/∂z, ∂g/∂z_refine): for GATE 3 the refine gate of Gu et al. (ICML 2020;
    `longrnn.functional.gates.refine_gate`) with f = σ(z), r = σ(z_refine),
        g = r(1 - (1 - f)²) + (1 - r)f²    ∂g/∂f = 2r(1 - f) + 2(1 - r)f    ∂g/∂r = 2f(1 - f);
    for the others `forget_gate`'s (φ(z), φ'(z)) and 0 (z_refine unused)."""
    if GATE == 3:
        f = tl.sigmoid(z)
        r = tl.sigmoid(z_refine)
        g = r * (1.0 - (1.0 - f) * (1.0 - f)) + (1.0 - r) * f * f
        dg = (2.0 * r * (1.0 - f) + 2.0 * (1.0 - r) * f) * f * (1.0 - f)
        dg_refine = 2.0 * f * (1.0 - f) * r * (1.0 - r)
    else:
        g, dg = forget_gate(z, GATE)
        dg_refine = tl.zeros_like(g)
    return g, dg, dg_refine


@triton.jit
def tile_product(a_ptr, a_stride, w_ptr, rows, n, row_ok, H, TRANSPOSED: tl.constexpr, BLOCK_B: tl.constexpr,
                 BLOCK: tl.constexpr):
    """Σ_k a[:, k] Wᵀ[k, n] (TRANSPOSED: W[n, k], the forward's) or Σ_k a[:, k] W[k, n] (the backward's)
    for an (H, H) block W and rows of a read with ``a_stride`` between them, over tiles of k."""
    tile = tl.arange(0, BLOCK)
    acc = tl.zeros((BLOCK_B, BLOCK), dtype=w_ptr.dtype.element_ty)
    for k0 in range(0, H, BLOCK):
        k = k0 + tile
        a = tl.load(a_ptr + rows[:, None] * a_stride + k[None, :], mask=row_ok & (k < H)[None, :], other=0.0)
        w_mask = (k < H)[:, None] & (n < H)[None, :]
        if TRANSPOSED:
            w = tl.load(w_ptr + n[None, :] * H + k[:, None], mask=w_mask, other=0.0)
        else:
            w = tl.load(w_ptr + k[:, None] * H + n[None, :], mask=w_mask, other=0.0)
        acc += tl.dot(a, w, input_precision="ieee")
    return acc


def tile_sizes(batch: int, hidden: int, block: int | None) -> tuple[int, int]:
    """(BLOCK_B sequences per program, BLOCK units per tile): powers of two from 16 (tl.dot's smallest
    tile) to 64; ``block`` overrides the second."""
    block = block or max(16, min(64, triton.next_power_of_2(hidden)))
    return max(16, min(64, triton.next_power_of_2(batch))), block


def launch_options(block_b: int, block: int) -> dict:
    """Compiler options of every launch. ``num_stages=1``: a step's loads are separated by barriers, so
    there is nothing to pipeline, and the default 3 stages double-buffer every tile in shared memory (the
    LSTM's backward asked 256 KB in float32 at 64 x 64 tiles, more than an H100 has: compiled for sm_90 on
    a CPU by tests/test_triton_kernels.py). Eight warps for 64 x 64 tiles, four below (fewer registers
    spilled)."""
    return {"num_stages": 1, "num_warps": 8 if block_b * block >= 64 * 64 else 4}


def launch(kernel, batch: int, block_b: int, block: int, *args) -> None:
    """Run ``kernel`` with one program per ``block_b`` sequences on the device of ``args[0]`` (made the
    current CUDA device for the launch), the tile sizes last in its arguments."""
    device = args[0].device
    guard = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
    with guard:
        kernel[(triton.cdiv(batch, block_b),)](*args, block_b, block, **launch_options(block_b, block))
