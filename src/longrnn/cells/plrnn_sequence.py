"""The PLRNN over a whole sequence as one Triton launch forward and one backward (``engine="triton"``).

The equation and its hand-written backward are in `longrnn.kernels.plrnn`; this module is the autograd
function around the two launches. Tested equal to `PLRNNCell.step` under autograd in outputs and every
gradient (`tests/test_triton_kernels.py`).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from longrnn.cells.lstm_sequence import triton_kernels


class _PLRNNSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_proj, z0, A, W, h):
        kernels = triton_kernels("plrnn", x_proj.device, x_proj.dtype)
        x_proj, z0, A, W, h = (t.detach().contiguous() for t in (x_proj, z0, A, W, h))
        zs = kernels.plrnn_forward(x_proj, z0, A, W, h)
        ctx.kernels = kernels
        ctx.save_for_backward(A, W, zs)
        return zs[1:].transpose(0, 1), zs[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_outputs, grad_z):
        A, W, zs = ctx.saved_tensors  # zs: (T + 1, B, M), the initial state first
        grad_steps = torch.zeros_like(zs[1:]) if grad_outputs is None else grad_outputs.transpose(0, 1).contiguous()
        grad_z = torch.zeros_like(zs[0]) if grad_z is None else grad_z.contiguous()
        dx, dz0 = ctx.kernels.plrnn_backward(zs, A, W, grad_steps, grad_z)
        M, previous = zs.shape[-1], zs[:-1]
        grad_W = dx.reshape(-1, M).t() @ torch.relu(previous).reshape(-1, M)  # Σ_t dz_tᵀ relu(z_{t-1})
        return dx, dz0, (dx * previous).sum((0, 1)), grad_W, dx.sum((0, 1))


def plrnn_sequence(x_proj: torch.Tensor, z0: torch.Tensor, A: torch.Tensor, W: torch.Tensor, h: torch.Tensor):
    """z_t = A ⊙ z_{t-1} + relu(z_{t-1}) Wᵀ + h + x_proj_t over ``x_proj`` (time, batch, M) = C s from
    ``z0`` (batch, M), with A and h (M,) and the coupling W (M, M) (its diagonal masked by the caller).

    Returns ``(z (batch, time, M), z_T)``, differentiable once in every tensor argument. float32 or
    float64 on a CUDA device; UsageError elsewhere (`longrnn.cells.lstm_sequence.triton_kernels`).
    """
    return _PLRNNSequence.apply(x_proj, z0, A, W, h)
