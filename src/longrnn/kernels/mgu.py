"""The minimal gated unit's recurrence as two Triton kernels: forward in one launch, backward in one.

The equations are `longrnn.cells.mgu.MGUCell`'s (Zhou et al. 2016), with x_proj = W x + b in blocks f, h
and weight_hh = [U_f; U_h]:

    forward, one program per block of BLOCK_B sequences, t = 1..T, in two phases a step:
        p_f = x_f + h_{t-1} U_fᵀ    f = σ(p_f)           (then g = f ⊙ h_{t-1} is written for every unit)
        u = x_h + g U_hᵀ            h_t = (1 - f) h_{t-1} + f tanh(u)
      and stores h_t and (p_f, u), from which the backward recomputes f and tanh(u).

    backward, t = T..1, dh = ∂L/∂h_t (from the output and from step t+1), with n = tanh(u):
        du = dh f (1 - n²)           dg = du U_h
        dp_f = (dh (n - h_{t-1}) + dg h_{t-1}) f (1 - f)
        dh_{t-1} = dh (1 - f) + dg f + dp_f U_f + ∂L/∂h_{t-1}
      and stores ∂L/∂x_proj_t = [dp_f, du]; after the launch ∂L/∂U_f = Σ_t dp_fᵀ h_{t-1} and
      ∂L/∂U_h = Σ_t duᵀ (f ⊙ h_{t-1}) are two products.

The candidate's product reads f ⊙ h of every unit, so each step has a barrier between its two products
(forward) and three phases (backward). A program owns its sequences and walks their units in tiles, as
`longrnn.kernels.lstm` does.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from longrnn.kernels.common import launch, tanh, tile_product, tile_sizes


@triton.jit
def _mgu_forward_kernel(xp_ptr, w_ptr, hs_ptr, sv_ptr, g_ptr, T, B, H, BLOCK_B: tl.constexpr, BLOCK: tl.constexpr):
    """hs (T + 1, B, H) holds h_0 at index 0 on entry; sv (T, B, 2H) receives (p_f, u); g (B, H) is scratch."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = (rows < B)[:, None]
    tile = tl.arange(0, BLOCK)
    for _step in range(T):
        for n0 in range(0, H, BLOCK):  # the gate, and g = f ⊙ h for the candidate's product
            n = n0 + tile
            mask = row_ok & (n < H)[None, :]
            x = rows[:, None] * (2 * H) + n[None, :]
            state = rows[:, None] * H + n[None, :]
            p_f = tl.load(xp_ptr + x, mask=mask, other=0.0) + tile_product(hs_ptr, H, w_ptr, rows, n, row_ok, H, True,
                                                                       BLOCK_B, BLOCK)
            tl.store(sv_ptr + x, p_f, mask=mask)
            tl.store(g_ptr + state, tl.sigmoid(p_f) * tl.load(hs_ptr + state, mask=mask, other=0.0), mask=mask)
        tl.debug_barrier()  # every g is written before the candidate's product reads it
        for n0 in range(0, H, BLOCK):  # the candidate and the new state
            n = n0 + tile
            mask = row_ok & (n < H)[None, :]
            x = rows[:, None] * (2 * H) + n[None, :]
            state = rows[:, None] * H + n[None, :]
            u = tl.load(xp_ptr + x + H, mask=mask, other=0.0) + tile_product(g_ptr, H, w_ptr + H * H, rows, n, row_ok,
                                                                         H, True, BLOCK_B, BLOCK)
            f = tl.sigmoid(tl.load(sv_ptr + x, mask=mask, other=0.0))
            h = tl.load(hs_ptr + state, mask=mask, other=0.0)
            tl.store(sv_ptr + x + H, u, mask=mask)
            tl.store(hs_ptr + B * H + state, (1.0 - f) * h + f * tanh(u), mask=mask)
        xp_ptr += B * 2 * H  # pointers advance (64-bit), so T·B·H may exceed 2^31
        sv_ptr += B * 2 * H
        hs_ptr += B * H
        tl.debug_barrier()  # this step's h is written (and g read) before the next step begins


@triton.jit
def _mgu_backward_kernel(sv_ptr, hs_ptr, w_ptr, gout_ptr, dh_ptr, dx_ptr, T, B, H,
                         BLOCK_B: tl.constexpr, BLOCK: tl.constexpr):
    """dh (B, H) holds ∂L/∂h_T on entry and ∂L/∂h_0 on return; dx (T, B, 2H) receives [dp_f, du]."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = (rows < B)[:, None]
    tile = tl.arange(0, BLOCK)
    # every per-step pointer arrives at the last step (the caller passes views of it, so the offset is 64-bit:
    # (T - 1)·B·H may exceed 2^31) and walks back
    # (hs_ptr: h_{t-1})
    for _step in range(T):
        for n0 in range(0, H, BLOCK):  # du, the direct paths; dx's f block holds dh (n - h) until phase 2
            n = n0 + tile
            mask = row_ok & (n < H)[None, :]
            x = rows[:, None] * (2 * H) + n[None, :]
            state = rows[:, None] * H + n[None, :]
            dh = tl.load(dh_ptr + state, mask=mask, other=0.0) + tl.load(gout_ptr + state, mask=mask, other=0.0)
            f = tl.sigmoid(tl.load(sv_ptr + x, mask=mask, other=0.0))
            cand = tanh(tl.load(sv_ptr + x + H, mask=mask, other=0.0))
            h = tl.load(hs_ptr + state, mask=mask, other=0.0)
            tl.store(dx_ptr + x + H, dh * f * (1.0 - cand * cand), mask=mask)
            tl.store(dx_ptr + x, dh * (cand - h), mask=mask)
            tl.store(dh_ptr + state, dh * (1.0 - f), mask=mask)
        tl.debug_barrier()  # every du is written before dg = du U_h reads it
        for n0 in range(0, H, BLOCK):  # dg, then dp_f and dg's path to h_{t-1}
            n = n0 + tile
            mask = row_ok & (n < H)[None, :]
            x = rows[:, None] * (2 * H) + n[None, :]
            state = rows[:, None] * H + n[None, :]
            dg = tile_product(dx_ptr + H, 2 * H, w_ptr + H * H, rows, n, row_ok, H, False, BLOCK_B, BLOCK)
            f = tl.sigmoid(tl.load(sv_ptr + x, mask=mask, other=0.0))
            h = tl.load(hs_ptr + state, mask=mask, other=0.0)
            dp_f = (tl.load(dx_ptr + x, mask=mask, other=0.0) + dg * h) * f * (1.0 - f)
            tl.store(dx_ptr + x, dp_f, mask=mask)
            tl.store(dh_ptr + state, tl.load(dh_ptr + state, mask=mask, other=0.0) + dg * f, mask=mask)
        tl.debug_barrier()  # every dp_f is written before dp_f U_f reads it
        for n0 in range(0, H, BLOCK):  # the gate's path to h_{t-1}
            n = n0 + tile
            mask = row_ok & (n < H)[None, :]
            state = rows[:, None] * H + n[None, :]
            through_gate = tile_product(dx_ptr, 2 * H, w_ptr, rows, n, row_ok, H, False, BLOCK_B, BLOCK)
            tl.store(dh_ptr + state, tl.load(dh_ptr + state, mask=mask, other=0.0) + through_gate, mask=mask)
        tl.debug_barrier()  # dh_{t-1} is written before the next step's first phase reads it
        sv_ptr -= B * 2 * H
        dx_ptr -= B * 2 * H
        hs_ptr -= B * H
        gout_ptr -= B * H


def mgu_forward(x_proj, h0, weight_hh, block: int | None = None):
    """Forward launch. x_proj (T, B, 2H) = W x + b, h0 (B, H), weight_hh (2H, H) = [U_f; U_h], all
    contiguous, of one dtype (float32 or float64) and device. Returns (hs (T + 1, B, H): h_0..h_T,
    saved (T, B, 2H): (p_f, u))."""
    T, B, G = x_proj.shape
    H = G // 2
    hs = torch.empty(T + 1, B, H, device=x_proj.device, dtype=x_proj.dtype)
    hs[0] = h0
    saved = torch.empty_like(x_proj)
    scratch = torch.empty(B, H, device=x_proj.device, dtype=x_proj.dtype)
    block_b, block = tile_sizes(B, H, block)
    launch(_mgu_forward_kernel, B, block_b, block, x_proj, weight_hh, hs, saved, scratch, T, B, H)
    return hs, saved


def mgu_backward(saved, hs, weight_hh, grad_outputs, grad_h, block: int | None = None):
    """Backward launch, from the forward's saved and hs and weight_hh, and the gradients of every step's
    output (T, B, H) and of h_T (B, H) — zeros for unused ones, all contiguous. Returns (∂L/∂x_proj =
    [dp_f, du] (T, B, 2H), ∂L/∂h_0)."""
    T, B, G = saved.shape
    H = G // 2
    dx = torch.empty_like(saved)
    dh = grad_h.clone()  # overwritten with ∂L/∂h_0
    block_b, block = tile_sizes(B, H, block)
    launch(_mgu_backward_kernel, B, block_b, block, saved[T - 1], hs[T - 1], weight_hh, grad_outputs[T - 1], dh,
           dx[T - 1], T, B, H)
    return dx, dh
