"""The LSTM's recurrence as two Triton kernels: the whole sequence forward in one launch, backward in one.

The equations are `longrnn.cells.gated.LSTMCell`'s, with a single-input forget gate φ (sigmoid, fast or
softsign, `longrnn.functional.gates`) or the refine gate (block i then holds the refine gate's input a_r,
f = refine(σ(a_f), σ(a_r)) and i = 1 - f, so da_i and da_f both carry dc (c_{t-1} - g)); the backward
is the one written out in `longrnn.cells.lstm_sequence`, whose autograd function calls these two
launches for ``engine="triton"``.
The step loop stays the reference: tests compare outputs and gradients with it.

    forward, one program per block of BLOCK_B sequences, t = 1..T:
        a_t = x_proj_t + h_{t-1} W_hhᵀ                 (blocks i, f, g, o; tl.dot on BLOCK tiles)
        i = σ(a_i)   f = φ(a_f)   g = tanh(a_g)   o = σ(a_o)
        c_t = f c_{t-1} + i g      h_t = o tanh(c_t)
      and stores h_t, c_t and a_t (what the backward recomputes the gates from).

    backward, t = T..1, dh = ∂L/∂h_t (from the output and from step t+1), dc carried:
        dc += dh o (1 - tanh² c_t)
        da  = [dc g σ'(a_i),  dc c_{t-1} φ'(a_f),  dc i (1 - g²),  dh tanh(c_t) σ'(a_o)]
        dc_{t-1} = dc f            dh_{t-1} = da W_hh + ∂L/∂h_{t-1}
      and stores da_t; ∂L/∂W_hh = Σ_t da_tᵀ h_{t-1} is one matrix product after the launch.

A program owns its sequences entirely: it walks their units in tiles of BLOCK units (so any H fits), reads
h_{t-1} and c_{t-1} back from the output buffers it wrote at the step before (on a GPU from L1/L2, with a
barrier between steps) and W_hh tile by tile at every step (it stays in L2); no program waits for
another. Products run in IEEE precision (no TF32), so float32 results match the step loop's to
rounding; float64 runs too. On a CPU the kernels run only under Triton's interpreter
(``TRITON_INTERPRET=1`` set before this module is imported), which is how the tests check their
arithmetic without a GPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from longrnn.kernels import GATE_CODES
from longrnn.kernels.common import keep_gate, launch, tanh, tile_product, tile_sizes


@triton.jit
def _lstm_forward_kernel(xp_ptr, w_ptr, hs_ptr, cs_ptr, a_ptr, T, B, H,
                         GATE: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK: tl.constexpr):
    """hs, cs (T + 1, B, H) hold h_0, c_0 at index 0 on entry; step t reads index t and writes t + 1."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = (rows < B)[:, None]
    tile = tl.arange(0, BLOCK)
    for _step in range(T):
        for n0 in range(0, H, BLOCK):  # a tile of BLOCK output units
            n = n0 + tile
            mask = row_ok & (n < H)[None, :]
            gates = rows[:, None] * (4 * H) + n[None, :]  # block i's offsets in a (B, 4H) step
            a_i = tl.load(xp_ptr + gates, mask=mask, other=0.0)
            a_f = tl.load(xp_ptr + gates + H, mask=mask, other=0.0)
            a_g = tl.load(xp_ptr + gates + 2 * H, mask=mask, other=0.0)
            a_o = tl.load(xp_ptr + gates + 3 * H, mask=mask, other=0.0)
            for k0 in range(0, H, BLOCK):  # a_q += h_{t-1}[:, k] W_q[n, k]ᵀ over tiles of input units k
                k = k0 + tile
                h = tl.load(hs_ptr + rows[:, None] * H + k[None, :], mask=row_ok & (k < H)[None, :], other=0.0)
                w_mask = (k < H)[:, None] & (n < H)[None, :]
                w_t = w_ptr + n[None, :] * H + k[:, None]  # (BLOCK k, BLOCK n): W_hh[n, k] of block i
                a_i += tl.dot(h, tl.load(w_t, mask=w_mask, other=0.0), input_precision="ieee")
                a_f += tl.dot(h, tl.load(w_t + H * H, mask=w_mask, other=0.0), input_precision="ieee")
                a_g += tl.dot(h, tl.load(w_t + 2 * H * H, mask=w_mask, other=0.0), input_precision="ieee")
                a_o += tl.dot(h, tl.load(w_t + 3 * H * H, mask=w_mask, other=0.0), input_precision="ieee")
            tl.store(a_ptr + gates, a_i, mask=mask)
            tl.store(a_ptr + gates + H, a_f, mask=mask)
            tl.store(a_ptr + gates + 2 * H, a_g, mask=mask)
            tl.store(a_ptr + gates + 3 * H, a_o, mask=mask)
            state = rows[:, None] * H + n[None, :]
            f = keep_gate(a_f, a_i, GATE)[0]
            i = 1.0 - f if GATE == 3 else tl.sigmoid(a_i)  # refine: block i holds the refine gate's input
            c = f * tl.load(cs_ptr + state, mask=mask, other=0.0) + i * tanh(a_g)
            tl.store(cs_ptr + B * H + state, c, mask=mask)
            tl.store(hs_ptr + B * H + state, tl.sigmoid(a_o) * tanh(c), mask=mask)
        xp_ptr += B * 4 * H  # pointers advance (64-bit), so T·B·H may exceed 2^31
        a_ptr += B * 4 * H
        hs_ptr += B * H
        cs_ptr += B * H
        tl.debug_barrier()  # this step's h is written before the next step reads it


@triton.jit
def _lstm_backward_kernel(a_ptr, cs_ptr, w_ptr, gout_ptr, dh_ptr, dc_ptr, da_ptr, T, B, H,
                          GATE: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK: tl.constexpr):
    """dh, dc (B, H) hold ∂L/∂h_T and ∂L/∂c_T on entry and ∂L/∂h_0, ∂L/∂c_0 on return; cs as the forward's."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = (rows < B)[:, None]
    tile = tl.arange(0, BLOCK)
    # every per-step pointer arrives at the last step (the caller passes views of it, so the offset is 64-bit:
    # (T - 1)·B·H may exceed 2^31) and walks back
    # (cs_ptr: c_{t-1}; cs_ptr + B H: c_t)
    for _step in range(T):
        for n0 in range(0, H, BLOCK):  # the pointwise part, a tile of units at a time
            n = n0 + tile
            mask = row_ok & (n < H)[None, :]
            state = rows[:, None] * H + n[None, :]
            gates = rows[:, None] * (4 * H) + n[None, :]
            dh = tl.load(dh_ptr + state, mask=mask, other=0.0) + tl.load(gout_ptr + state, mask=mask, other=0.0)
            dc = tl.load(dc_ptr + state, mask=mask, other=0.0)
            a_i = tl.load(a_ptr + gates, mask=mask, other=0.0)
            f, df, df_refine = keep_gate(tl.load(a_ptr + gates + H, mask=mask, other=0.0), a_i, GATE)
            g = tanh(tl.load(a_ptr + gates + 2 * H, mask=mask, other=0.0))
            o = tl.sigmoid(tl.load(a_ptr + gates + 3 * H, mask=mask, other=0.0))
            tc = tanh(tl.load(cs_ptr + B * H + state, mask=mask, other=0.0))
            dc += dh * o * (1.0 - tc * tc)
            c_prev = tl.load(cs_ptr + state, mask=mask, other=0.0)
            if GATE == 3:  # i = 1 - f: ∂L/∂f = dc (c_{t-1} - g), through both of f's inputs
                i = 1.0 - f
                df_total = dc * (c_prev - g)
                tl.store(da_ptr + gates, df_total * df_refine, mask=mask)
                tl.store(da_ptr + gates + H, df_total * df, mask=mask)
            else:
                i = tl.sigmoid(a_i)
                tl.store(da_ptr + gates, dc * g * i * (1.0 - i), mask=mask)
                tl.store(da_ptr + gates + H, dc * c_prev * df, mask=mask)
            tl.store(da_ptr + gates + 2 * H, dc * i * (1.0 - g * g), mask=mask)
            tl.store(da_ptr + gates + 3 * H, dh * tc * o * (1.0 - o), mask=mask)
            tl.store(dc_ptr + state, dc * f, mask=mask)
        tl.debug_barrier()  # every da_t is written before the product reads it
        for j0 in range(0, H, BLOCK):  # dh_{t-1}[:, j] = Σ_q Σ_n da_q[:, n] W_q[n, j], a tile of j at a time
            j = j0 + tile
            dh = tile_product(da_ptr, 4 * H, w_ptr, rows, j, row_ok, H, False, BLOCK_B, BLOCK)
            for q in tl.static_range(1, 4):
                dh += tile_product(da_ptr + q * H, 4 * H, w_ptr + q * H * H, rows, j, row_ok, H, False, BLOCK_B, BLOCK)
            tl.store(dh_ptr + rows[:, None] * H + j[None, :], dh, mask=row_ok & (j < H)[None, :])
        tl.debug_barrier()  # dh_{t-1} is written before the next step's pointwise part reads it
        a_ptr -= B * 4 * H
        da_ptr -= B * 4 * H
        cs_ptr -= B * H
        gout_ptr -= B * H


def lstm_forward(x_proj, h0, c0, weight_hh, gate: str, block: int | None = None):
    """Forward launch. x_proj (T, B, 4H) = W_ih x + b_ih + b_hh, h0 and c0 (B, H), weight_hh (4H, H), all
    contiguous, of one dtype (float32 or float64) and device; ``block``: units per tile (a power of two
    >= 16; default min(64, H rounded up)). Returns (hs, cs (T + 1, B, H), a (T, B, 4H)): the states h_t
    and c_t, t = 0..T (h0 and c0 first), and every step's pre-activations."""
    T, B, G = x_proj.shape
    H = G // 4
    hs, cs = (torch.empty(T + 1, B, H, device=x_proj.device, dtype=x_proj.dtype) for _ in range(2))
    hs[0], cs[0] = h0, c0
    a = torch.empty_like(x_proj)
    block_b, block = tile_sizes(B, H, block)
    launch(_lstm_forward_kernel, B, block_b, block, x_proj, weight_hh, hs, cs, a, T, B, H, GATE_CODES[gate])
    return hs, cs, a


def lstm_backward(a, cs, weight_hh, grad_outputs, grad_h, grad_c, gate: str, block: int | None = None):
    """Backward launch, from the forward's a and cs and weight_hh, and the gradients of every step's
    output (T, B, H), of h_T and of c_T (B, H) — zeros for unused ones, all contiguous. Returns
    (∂L/∂x_proj (T, B, 4H), ∂L/∂h_0, ∂L/∂c_0); ∂L/∂W_hh is left to the caller (one matrix product)."""
    T, B, G = a.shape
    H = G // 4
    da = torch.empty_like(a)
    dh, dc = grad_h.clone(), grad_c.clone()  # overwritten with ∂L/∂h_0, ∂L/∂c_0
    block_b, block = tile_sizes(B, H, block)
    launch(_lstm_backward_kernel, B, block_b, block, a[T - 1], cs[T - 1], weight_hh, grad_outputs[T - 1], dh, dc,
           da[T - 1], T, B, H, GATE_CODES[gate])
    return da, dh, dc
