"""The GRU's recurrence as two Triton kernels: the whole sequence forward in one launch, backward in one.

The equations are `longrnn.cells.gated.GRUCell`'s (torch's GRU) with a single-input update gate φ
(sigmoid, fast or softsign) or the refine gate (a fourth block q: z = refine(σ(a_z), σ(a_q)), a_q = x_q +
h W_hqᵀ, stored after m; its gradient da_q = dh (h_{t-1} - n) ∂z/∂a_q joins dx and dg as a fourth block,
and the update gate's φ'(a_z) below becomes ∂z/∂a_z); `longrnn.cells.kernel_sequences` wraps the
launches in an autograd function for ``engine="triton"``. The step loop is the reference the tests
compare with.

    forward, one program per block of BLOCK_B sequences, t = 1..T, with x_proj = W_ih x + b_ih + [b_hr, b_hz, 0]:
        a_r = x_r + h W_hrᵀ     a_z = x_z + h W_hzᵀ     m = h W_hnᵀ + b_hn     a_n = x_n + σ(a_r) m
        r = σ(a_r)   z = φ(a_z)   n = tanh(a_n)          h_t = (1 - z) n + z h_{t-1}
      and stores h_t and (a_r, a_z, a_n, m), from which the backward recomputes the gates.

    backward, t = T..1, dh = ∂L/∂h_t (from the output and from step t+1):
        da_n = dh (1 - z)(1 - n²)    dm = da_n r    da_r = da_n m r(1 - r)    da_z = dh (h_{t-1} - n) φ'(a_z)
        dh_{t-1} = dh z + [da_r, da_z, dm] W_hh + ∂L/∂h_{t-1}
      and stores ∂L/∂x_proj_t = [da_r, da_z, da_n] and [da_r, da_z, dm]; after the launch
      ∂L/∂W_hh = Σ_t [da_r, da_z, dm]_tᵀ h_{t-1} and ∂L/∂b_hn = Σ_t dm_t are one product and one sum.

A program owns its sequences and walks their units in tiles (any H), as `longrnn.kernels.lstm` does.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from longrnn.kernels import GATE_CODES
from longrnn.kernels.common import keep_gate, launch, tanh, tile_product, tile_sizes


@triton.jit
def _gru_forward_kernel(xp_ptr, w_ptr, b_ptr, hs_ptr, sv_ptr, T, B, H,
                        GATE: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK: tl.constexpr):
    """hs (T + 1, B, H) holds h_0 at index 0 on entry; sv (T, B, (NB + 1)H) receives (a_r, a_z, a_n, m[, a_q])."""
    NB: tl.constexpr = 4 if GATE == 3 else 3  # gate blocks: r, z, n, and the refine gate's q
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = (rows < B)[:, None]
    tile = tl.arange(0, BLOCK)
    for _step in range(T):
        for n0 in range(0, H, BLOCK):  # a tile of BLOCK output units
            n = n0 + tile
            mask = row_ok & (n < H)[None, :]
            x = rows[:, None] * (NB * H) + n[None, :]  # block r's offsets in a (B, NB H) step
            a_r = tl.load(xp_ptr + x, mask=mask, other=0.0)
            a_z = tl.load(xp_ptr + x + H, mask=mask, other=0.0)
            a_q = tl.load(xp_ptr + x + 3 * H, mask=mask, other=0.0) if GATE == 3 else a_z
            m = tl.zeros_like(a_r) + tl.load(b_ptr + n, mask=n < H, other=0.0)[None, :]
            for k0 in range(0, H, BLOCK):  # the three recurrent products over tiles of input units k
                k = k0 + tile
                h = tl.load(hs_ptr + rows[:, None] * H + k[None, :], mask=row_ok & (k < H)[None, :], other=0.0)
                w_mask = (k < H)[:, None] & (n < H)[None, :]
                w_t = w_ptr + n[None, :] * H + k[:, None]  # (BLOCK k, BLOCK n): W_hh[n, k] of block r
                a_r += tl.dot(h, tl.load(w_t, mask=w_mask, other=0.0), input_precision="ieee")
                a_z += tl.dot(h, tl.load(w_t + H * H, mask=w_mask, other=0.0), input_precision="ieee")
                m += tl.dot(h, tl.load(w_t + 2 * H * H, mask=w_mask, other=0.0), input_precision="ieee")
                if GATE == 3:
                    a_q += tl.dot(h, tl.load(w_t + 3 * H * H, mask=w_mask, other=0.0), input_precision="ieee")
            a_n = tl.load(xp_ptr + x + 2 * H, mask=mask, other=0.0) + tl.sigmoid(a_r) * m
            z = keep_gate(a_z, a_q, GATE)[0]
            state = rows[:, None] * H + n[None, :]
            h_new = (1.0 - z) * tanh(a_n) + z * tl.load(hs_ptr + state, mask=mask, other=0.0)
            saved = rows[:, None] * ((NB + 1) * H) + n[None, :]
            tl.store(sv_ptr + saved, a_r, mask=mask)
            tl.store(sv_ptr + saved + H, a_z, mask=mask)
            tl.store(sv_ptr + saved + 2 * H, a_n, mask=mask)
            tl.store(sv_ptr + saved + 3 * H, m, mask=mask)
            if GATE == 3:
                tl.store(sv_ptr + saved + 4 * H, a_q, mask=mask)
            tl.store(hs_ptr + B * H + state, h_new, mask=mask)
        xp_ptr += B * NB * H  # pointers advance (64-bit), so T·B·H may exceed 2^31
        sv_ptr += B * (NB + 1) * H
        hs_ptr += B * H
        tl.debug_barrier()  # this step's h is written before the next step reads it


@triton.jit
def _gru_backward_kernel(sv_ptr, hs_ptr, w_ptr, gout_ptr, dh_ptr, dx_ptr, dg_ptr, T, B, H,
                         GATE: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK: tl.constexpr):
    """dh (B, H) holds ∂L/∂h_T on entry and ∂L/∂h_0 on return; dx, dg (T, B, NB H) receive
    [da_r, da_z, da_n(, da_q)] and [da_r, da_z, dm(, da_q)]."""
    NB: tl.constexpr = 4 if GATE == 3 else 3
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = (rows < B)[:, None]
    tile = tl.arange(0, BLOCK)
    # every per-step pointer arrives at the last step (the caller passes views of it, so the offset is 64-bit:
    # (T - 1)·B·H may exceed 2^31) and walks back
    # (hs_ptr: h_{t-1})
    for _step in range(T):
        for n0 in range(0, H, BLOCK):  # the pointwise part, a tile of units at a time
            n = n0 + tile
            mask = row_ok & (n < H)[None, :]
            state = rows[:, None] * H + n[None, :]
            saved = rows[:, None] * ((NB + 1) * H) + n[None, :]
            grads = rows[:, None] * (NB * H) + n[None, :]
            dh = tl.load(dh_ptr + state, mask=mask, other=0.0) + tl.load(gout_ptr + state, mask=mask, other=0.0)
            r = tl.sigmoid(tl.load(sv_ptr + saved, mask=mask, other=0.0))
            a_z = tl.load(sv_ptr + saved + H, mask=mask, other=0.0)
            a_q = tl.load(sv_ptr + saved + 4 * H, mask=mask, other=0.0) if GATE == 3 else a_z
            z, dz, dz_refine = keep_gate(a_z, a_q, GATE)
            g = tanh(tl.load(sv_ptr + saved + 2 * H, mask=mask, other=0.0))
            m = tl.load(sv_ptr + saved + 3 * H, mask=mask, other=0.0)
            da_n = dh * (1.0 - z) * (1.0 - g * g)
            da_r = da_n * m * r * (1.0 - r)
            dz_total = dh * (tl.load(hs_ptr + state, mask=mask, other=0.0) - g)  # ∂L/∂z
            da_z = dz_total * dz
            tl.store(dx_ptr + grads, da_r, mask=mask)
            tl.store(dx_ptr + grads + H, da_z, mask=mask)
            tl.store(dx_ptr + grads + 2 * H, da_n, mask=mask)
            tl.store(dg_ptr + grads, da_r, mask=mask)
            tl.store(dg_ptr + grads + H, da_z, mask=mask)
            tl.store(dg_ptr + grads + 2 * H, da_n * r, mask=mask)
            if GATE == 3:
                tl.store(dx_ptr + grads + 3 * H, dz_total * dz_refine, mask=mask)
                tl.store(dg_ptr + grads + 3 * H, dz_total * dz_refine, mask=mask)
            tl.store(dh_ptr + state, dh * z, mask=mask)  # the direct path; the products are added below
        tl.debug_barrier()  # every dg_t is written before the product reads it
        for j0 in range(0, H, BLOCK):  # dh_{t-1}[:, j] += Σ_q Σ_n dg_q[:, n] W_q[n, j], a tile of j at a time
            j = j0 + tile
            out = rows[:, None] * H + j[None, :]
            out_mask = row_ok & (j < H)[None, :]
            dh = tl.load(dh_ptr + out, mask=out_mask, other=0.0)
            for q in tl.static_range(NB):
                dh += tile_product(dg_ptr + q * H, NB * H, w_ptr + q * H * H, rows, j, row_ok, H, False, BLOCK_B, BLOCK)
            tl.store(dh_ptr + out, dh, mask=out_mask)
        tl.debug_barrier()  # dh_{t-1} is written before the next step's pointwise part reads it
        sv_ptr -= B * (NB + 1) * H
        dx_ptr -= B * NB * H
        dg_ptr -= B * NB * H
        hs_ptr -= B * H
        gout_ptr -= B * H


def gate_blocks(gate: str) -> int:
    """NB, the gate blocks of x_proj and weight_hh: r, z, n, and q for the refine gate."""
    return 4 if gate == "refine" else 3


def gru_forward(x_proj, h0, weight_hh, bias_hn, gate: str, block: int | None = None):
    """Forward launch. x_proj (T, B, NB H) = W_ih x + b_ih + [b_hr, b_hz, 0(, b_hq)], h0 (B, H), weight_hh
    (NB H, H), bias_hn (H), all contiguous, of one dtype (float32 or float64) and device; NB = 4 for the
    refine gate, else 3; ``block`` as in `longrnn.kernels.lstm.lstm_forward`. Returns (hs (T + 1, B, H):
    h_0..h_T, saved (T, B, (NB + 1)H))."""
    T, B, G = x_proj.shape
    H = G // gate_blocks(gate)
    hs = torch.empty(T + 1, B, H, device=x_proj.device, dtype=x_proj.dtype)
    hs[0] = h0
    saved = torch.empty(T, B, G + H, device=x_proj.device, dtype=x_proj.dtype)
    block_b, block = tile_sizes(B, H, block)
    launch(_gru_forward_kernel, B, block_b, block, x_proj, weight_hh, bias_hn, hs, saved, T, B, H, GATE_CODES[gate])
    return hs, saved


def gru_backward(saved, hs, weight_hh, grad_outputs, grad_h, gate: str, block: int | None = None):
    """Backward launch, from the forward's saved and hs and weight_hh, and the gradients of every step's
    output (T, B, H) and of h_T (B, H) — zeros for unused ones, all contiguous. Returns (∂L/∂x_proj,
    [da_r, da_z, dm(, da_q)] (both (T, B, NB H)), ∂L/∂h_0)."""
    T, B, H = hs.shape[0] - 1, *hs.shape[1:]
    dx = torch.empty(T, B, gate_blocks(gate) * H, device=saved.device, dtype=saved.dtype)
    dg = torch.empty_like(dx)
    dh = grad_h.clone()  # overwritten with ∂L/∂h_0
    block_b, block = tile_sizes(B, H, block)
    launch(_gru_backward_kernel, B, block_b, block, saved[T - 1], hs[T - 1], weight_hh, grad_outputs[T - 1], dh,
           dx[T - 1], dg[T - 1], T, B, H, GATE_CODES[gate])
    return dx, dg, dh
