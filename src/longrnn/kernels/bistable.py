"""The bistable cells' recurrence (BRC and nBRC) as two Triton kernels: forward in one launch, backward in one.

The equations are `longrnn.cells.bistable`'s (Vecoven, Ernst & Drion 2021), with x_proj = U x + b in
blocks c, a, h and the recurrent terms m = w ⊙ h (BRC, ``DIAGONAL``: memory vectors w_c, w_a) or
m = W h (nBRC: weight_hh, blocks c, a):

    forward, one program per block of BLOCK_B sequences, t = 1..T:
        p_c = x_c + m_c    p_a = x_a + m_a    c = σ(p_c)    a = 1 + tanh(p_a)
        u = x_h + a h_{t-1}                   h_t = c h_{t-1} + (1 - c) tanh(u)
      and stores h_t and (p_c, p_a, u), from which the backward recomputes c, a and tanh(u).

    backward, t = T..1, dh = ∂L/∂h_t (from the output and from step t+1), with n = tanh(u):
        du = dh (1 - c)(1 - n²)    dp_c = dh (h_{t-1} - n) c(1 - c)    dp_a = du h_{t-1} (1 - (a - 1)²)
        dh_{t-1} = dh c + du a + [dp_c, dp_a] · (w_c, w_a elementwise, or W_hh as a product) + ∂L/∂h_{t-1}
      and stores ∂L/∂x_proj_t = [dp_c, dp_a, du]; the recurrent parameters' gradients are one product
      (nBRC: Σ_t [dp_c, dp_a]_tᵀ h_{t-1}) or one weighted sum (BRC) after the launch.

A program owns its sequences and walks their units in tiles, as `longrnn.kernels.lstm` does.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from longrnn.kernels.common import launch, tanh, tile_product, tile_sizes


@triton.jit
def _bistable_forward_kernel(xp_ptr, w_ptr, hs_ptr, sv_ptr, T, B, H,
                             DIAGONAL: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK: tl.constexpr):
    """hs (T + 1, B, H) holds h_0 at index 0 on entry; sv (T, B, 3H) receives (p_c, p_a, u)."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = (rows < B)[:, None]
    tile = tl.arange(0, BLOCK)
    for _step in range(T):
        for n0 in range(0, H, BLOCK):  # a tile of BLOCK units
            n = n0 + tile
            mask = row_ok & (n < H)[None, :]
            x = rows[:, None] * (3 * H) + n[None, :]  # block c's offsets in a (B, 3H) step
            state = rows[:, None] * H + n[None, :]
            h = tl.load(hs_ptr + state, mask=mask, other=0.0)
            p_c = tl.load(xp_ptr + x, mask=mask, other=0.0)
            p_a = tl.load(xp_ptr + x + H, mask=mask, other=0.0)
            if DIAGONAL:  # BRC: each unit feeds back to itself only
                p_c += tl.load(w_ptr + n, mask=n < H, other=0.0)[None, :] * h
                p_a += tl.load(w_ptr + H + n, mask=n < H, other=0.0)[None, :] * h
            else:  # nBRC: full matrices, over tiles of input units k
                for k0 in range(0, H, BLOCK):
                    k = k0 + tile
                    h_k = tl.load(hs_ptr + rows[:, None] * H + k[None, :], mask=row_ok & (k < H)[None, :], other=0.0)
                    w_mask = (k < H)[:, None] & (n < H)[None, :]
                    w_t = w_ptr + n[None, :] * H + k[:, None]  # (BLOCK k, BLOCK n): W_hh[n, k] of block c
                    p_c += tl.dot(h_k, tl.load(w_t, mask=w_mask, other=0.0), input_precision="ieee")
                    p_a += tl.dot(h_k, tl.load(w_t + H * H, mask=w_mask, other=0.0), input_precision="ieee")
            c = tl.sigmoid(p_c)
            u = tl.load(xp_ptr + x + 2 * H, mask=mask, other=0.0) + (1.0 + tanh(p_a)) * h
            saved = rows[:, None] * (3 * H) + n[None, :]
            tl.store(sv_ptr + saved, p_c, mask=mask)
            tl.store(sv_ptr + saved + H, p_a, mask=mask)
            tl.store(sv_ptr + saved + 2 * H, u, mask=mask)
            tl.store(hs_ptr + B * H + state, c * h + (1.0 - c) * tanh(u), mask=mask)
        xp_ptr += B * 3 * H  # pointers advance (64-bit), so T·B·H may exceed 2^31
        sv_ptr += B * 3 * H
        hs_ptr += B * H
        tl.debug_barrier()  # this step's h is written before the next step reads it


@triton.jit
def _bistable_backward_kernel(sv_ptr, hs_ptr, w_ptr, gout_ptr, dh_ptr, dx_ptr, T, B, H,
                              DIAGONAL: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK: tl.constexpr):
    """dh (B, H) holds ∂L/∂h_T on entry and ∂L/∂h_0 on return; dx (T, B, 3H) receives [dp_c, dp_a, du]."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = (rows < B)[:, None]
    tile = tl.arange(0, BLOCK)
    # every per-step pointer arrives at the last step (the caller passes views of it, so the offset is 64-bit:
    # (T - 1)·B·H may exceed 2^31) and walks back
    # (hs_ptr: h_{t-1})
    for _step in range(T):
        for n0 in range(0, H, BLOCK):  # the pointwise part (and the BRC's elementwise feedback)
            n = n0 + tile
            mask = row_ok & (n < H)[None, :]
            state = rows[:, None] * H + n[None, :]
            x = rows[:, None] * (3 * H) + n[None, :]
            dh = tl.load(dh_ptr + state, mask=mask, other=0.0) + tl.load(gout_ptr + state, mask=mask, other=0.0)
            h = tl.load(hs_ptr + state, mask=mask, other=0.0)
            c = tl.sigmoid(tl.load(sv_ptr + x, mask=mask, other=0.0))
            g = tanh(tl.load(sv_ptr + x + H, mask=mask, other=0.0))  # a - 1
            cand = tanh(tl.load(sv_ptr + x + 2 * H, mask=mask, other=0.0))
            du = dh * (1.0 - c) * (1.0 - cand * cand)
            dp_c = dh * (h - cand) * c * (1.0 - c)
            dp_a = du * h * (1.0 - g * g)
            tl.store(dx_ptr + x, dp_c, mask=mask)
            tl.store(dx_ptr + x + H, dp_a, mask=mask)
            tl.store(dx_ptr + x + 2 * H, du, mask=mask)
            direct = dh * c + du * (1.0 + g)
            if DIAGONAL:
                direct += dp_c * tl.load(w_ptr + n, mask=n < H, other=0.0)[None, :]
                direct += dp_a * tl.load(w_ptr + H + n, mask=n < H, other=0.0)[None, :]
            tl.store(dh_ptr + state, direct, mask=mask)
        if not DIAGONAL:
            tl.debug_barrier()  # every dp_t is written before the product reads it
            for j0 in range(0, H, BLOCK):  # dh_{t-1}[:, j] += Σ_n dp_c[:, n] W_c[n, j] + dp_a[:, n] W_a[n, j]
                j = j0 + tile
                out = rows[:, None] * H + j[None, :]
                out_mask = row_ok & (j < H)[None, :]
                dh = tl.load(dh_ptr + out, mask=out_mask, other=0.0)
                dh += tile_product(dx_ptr, 3 * H, w_ptr, rows, j, row_ok, H, False, BLOCK_B, BLOCK)
                dh += tile_product(dx_ptr + H, 3 * H, w_ptr + H * H, rows, j, row_ok, H, False, BLOCK_B, BLOCK)
                tl.store(dh_ptr + out, dh, mask=out_mask)
        tl.debug_barrier()  # dh_{t-1} is written before the next step's pointwise part reads it
        sv_ptr -= B * 3 * H
        dx_ptr -= B * 3 * H
        hs_ptr -= B * H
        gout_ptr -= B * H


def bistable_forward(x_proj, h0, recurrent, diagonal: bool, block: int | None = None):
    """Forward launch. x_proj (T, B, 3H) = U x + b, h0 (B, H), ``recurrent`` the BRC's memory vectors
    [w_c, w_a] (2H) with ``diagonal``, else the nBRC's weight_hh (2H, H); all contiguous, of one dtype
    (float32 or float64) and device. Returns (hs (T + 1, B, H): h_0..h_T, saved (T, B, 3H))."""
    T, B, G = x_proj.shape
    H = G // 3
    hs = torch.empty(T + 1, B, H, device=x_proj.device, dtype=x_proj.dtype)
    hs[0] = h0
    saved = torch.empty_like(x_proj)
    block_b, block = tile_sizes(B, H, block)
    launch(_bistable_forward_kernel, B, block_b, block, x_proj, recurrent, hs, saved, T, B, H, diagonal)
    return hs, saved


def bistable_backward(saved, hs, recurrent, grad_outputs, grad_h, diagonal: bool, block: int | None = None):
    """Backward launch, from the forward's saved and hs, the recurrent parameter, and the gradients of
    every step's output (T, B, H) and of h_T (B, H) — zeros for unused ones, all contiguous. Returns
    (∂L/∂x_proj = [dp_c, dp_a, du] (T, B, 3H), ∂L/∂h_0)."""
    T, B, G = saved.shape
    H = G // 3
    dx = torch.empty_like(saved)
    dh = grad_h.clone()  # overwritten with ∂L/∂h_0
    block_b, block = tile_sizes(B, H, block)
    launch(_bistable_backward_kernel, B, block_b, block, saved[T - 1], hs[T - 1], recurrent, grad_outputs[T - 1], dh,
           dx[T - 1], T, B, H, diagonal)
    return dx, dh
