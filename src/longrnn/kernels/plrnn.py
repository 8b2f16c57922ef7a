"""The PLRNN's recurrence as two Triton kernels: the whole sequence forward in one launch, backward in one.

The equation is `longrnn.cells.plrnn.PLRNNCell`'s (Schmidt et al. 2021, eq. 1 without noise), with
x_proj = C s and W the coupling with its diagonal already masked:

    forward, one program per block of BLOCK_B sequences, t = 1..T:
        z_t = A ⊙ z_{t-1} + relu(z_{t-1}) Wᵀ + h + x_proj_t        (stores z_t)

    backward, t = T..1, dz = ∂L/∂z_t (from the output and from step t+1):
        ∂L/∂x_proj_t = dz          dz_{t-1} = dz ⊙ A + (dz W) ⊙ [z_{t-1} > 0] + ∂L/∂z_{t-1}
      and after the launch ∂L/∂W = Σ_t dz_tᵀ relu(z_{t-1}), ∂L/∂A = Σ_t dz_t ⊙ z_{t-1}, ∂L/∂h = Σ_t dz_t
      (one product and two sums).

A program owns its sequences and walks their units in tiles, as `longrnn.kernels.lstm` does.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from longrnn.kernels.common import launch, tile_product, tile_sizes


@triton.jit
def _plrnn_forward_kernel(xp_ptr, a_ptr, w_ptr, h_ptr, zs_ptr, T, B, M,
                          BLOCK_B: tl.constexpr, BLOCK: tl.constexpr):
    """zs (T + 1, B, M) holds z_0 at index 0 on entry; step t reads index t and writes t + 1."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = (rows < B)[:, None]
    tile = tl.arange(0, BLOCK)
    for _step in range(T):
        for n0 in range(0, M, BLOCK):  # a tile of BLOCK units
            n = n0 + tile
            mask = row_ok & (n < M)[None, :]
            state = rows[:, None] * M + n[None, :]
            z = tl.load(xp_ptr + state, mask=mask, other=0.0) + tl.load(h_ptr + n, mask=n < M, other=0.0)[None, :]
            z += tl.load(a_ptr + n, mask=n < M, other=0.0)[None, :] * tl.load(zs_ptr + state, mask=mask, other=0.0)
            for k0 in range(0, M, BLOCK):  # relu(z_{t-1}) Wᵀ over tiles of input units k
                k = k0 + tile
                r = tl.maximum(tl.load(zs_ptr + rows[:, None] * M + k[None, :], mask=row_ok & (k < M)[None, :],
                                       other=0.0), 0.0)
                w_t = tl.load(w_ptr + n[None, :] * M + k[:, None], mask=(k < M)[:, None] & (n < M)[None, :],
                              other=0.0)  # (BLOCK k, BLOCK n): W[n, k]
                z += tl.dot(r, w_t, input_precision="ieee")
            tl.store(zs_ptr + B * M + state, z, mask=mask)
        xp_ptr += B * M  # pointers advance (64-bit), so T·B·M may exceed 2^31
        zs_ptr += B * M
        tl.debug_barrier()  # this step's z is written before the next step reads it


@triton.jit
def _plrnn_backward_kernel(zs_ptr, a_ptr, w_ptr, gout_ptr, dz_ptr, dx_ptr, T, B, M,
                           BLOCK_B: tl.constexpr, BLOCK: tl.constexpr):
    """dz (B, M) holds ∂L/∂z_T on entry and ∂L/∂z_0 on return; dx (T, B, M) receives every step's dz."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = (rows < B)[:, None]
    tile = tl.arange(0, BLOCK)
    # every per-step pointer arrives at the last step (the caller passes views of it, so the offset is 64-bit:
    # (T - 1)·B·M may exceed 2^31) and walks back
    # (zs_ptr: z_{t-1})
    for _step in range(T):
        for n0 in range(0, M, BLOCK):  # dz_t: the carried gradient plus the output's
            n = n0 + tile
            mask = row_ok & (n < M)[None, :]
            state = rows[:, None] * M + n[None, :]
            dz = tl.load(dz_ptr + state, mask=mask, other=0.0) + tl.load(gout_ptr + state, mask=mask, other=0.0)
            tl.store(dx_ptr + state, dz, mask=mask)
        tl.debug_barrier()  # every dz_t is written before the product reads it
        for j0 in range(0, M, BLOCK):  # dz_{t-1}[:, j] = dz[:, j] A_j + Σ_n dz[:, n] W[n, j] [z_{t-1, j} > 0]
            j = j0 + tile
            out = rows[:, None] * M + j[None, :]
            out_mask = row_ok & (j < M)[None, :]
            coupled = tile_product(dx_ptr, M, w_ptr, rows, j, row_ok, M, False, BLOCK_B, BLOCK)  # Σ_n dz[:, n] W[n, j]
            active = tl.load(zs_ptr + out, mask=out_mask, other=0.0) > 0.0
            a = tl.load(a_ptr + j, mask=j < M, other=0.0)[None, :]
            direct = tl.load(dx_ptr + out, mask=out_mask, other=0.0) * a
            tl.store(dz_ptr + out, direct + tl.where(active, coupled, 0.0), mask=out_mask)
        tl.debug_barrier()  # dz_{t-1} is written before the next step reads it
        dx_ptr -= B * M
        zs_ptr -= B * M
        gout_ptr -= B * M


def plrnn_forward(x_proj, z0, A, W, h, block: int | None = None):
    """Forward launch. x_proj (T, B, M) = C s, z0 (B, M), A (M,), W (M, M) with its diagonal masked, h (M,);
    all contiguous, of one dtype (float32 or float64) and device. Returns zs (T + 1, B, M): z_0..z_T."""
    T, B, M = x_proj.shape
    zs = torch.empty(T + 1, B, M, device=x_proj.device, dtype=x_proj.dtype)
    zs[0] = z0
    block_b, block = tile_sizes(B, M, block)
    launch(_plrnn_forward_kernel, B, block_b, block, x_proj, A, W, h, zs, T, B, M)
    return zs


def plrnn_backward(zs, A, W, grad_outputs, grad_z, block: int | None = None):
    """Backward launch, from the forward's zs, A and W, and the gradients of every z_t (T, B, M) and of
    the final state (B, M) — zeros for unused ones, all contiguous. Returns (∂L/∂x_proj (T, B, M),
    ∂L/∂z_0)."""
    T, B, M = grad_outputs.shape
    dx = torch.empty_like(grad_outputs)
    dz = grad_z.clone()  # overwritten with ∂L/∂z_0
    block_b, block = tile_sizes(B, M, block)
    launch(_plrnn_backward_kernel, B, block_b, block, zs[T - 1], A, W, grad_outputs[T - 1], dz, dx[T - 1], T, B, M)
    return dx, dz
