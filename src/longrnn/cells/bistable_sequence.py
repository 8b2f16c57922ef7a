"""The BRC and the nBRC over a whole sequence as one Triton launch forward and one backward
(``engine="triton"``).

The equations and their hand-written backward are in `longrnn.kernels.bistable`; this module is the
autograd function around the two launches. Tested equal to the cells' step loops under autograd in
outputs and every gradient (`tests/test_triton_kernels.py`).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from longrnn.cells.lstm_sequence import triton_kernels


class _BistableSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_proj, h0, recurrent, diagonal):
        kernels = triton_kernels("bistable", x_proj.device, x_proj.dtype)
        x_proj, h0, recurrent = (t.detach().contiguous() for t in (x_proj, h0, recurrent))
        hs, saved = kernels.bistable_forward(x_proj, h0, recurrent, diagonal)
        ctx.diagonal, ctx.kernels = diagonal, kernels
        ctx.save_for_backward(recurrent, hs, saved)
        return hs[1:].transpose(0, 1), hs[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_outputs, grad_h):
        recurrent, hs, saved = ctx.saved_tensors  # hs: (T + 1, B, H), the initial state first
        grad_steps = torch.zeros_like(hs[1:]) if grad_outputs is None else grad_outputs.transpose(0, 1).contiguous()
        grad_h = torch.zeros_like(hs[0]) if grad_h is None else grad_h.contiguous()
        dx, dh = ctx.kernels.bistable_backward(saved, hs, recurrent, grad_steps, grad_h, ctx.diagonal)
        H = hs.shape[-1]
        dp, previous = dx[..., : 2 * H], hs[:-1]
        if ctx.diagonal:  # ∂L/∂[w_c, w_a] = Σ_t [dp_c ⊙ h_{t-1}, dp_a ⊙ h_{t-1}]
            grad_recurrent = (dp * previous.repeat(1, 1, 2)).sum((0, 1))
        else:  # ∂L/∂W_hh = Σ_t [dp_c, dp_a]_tᵀ h_{t-1}
            grad_recurrent = dp.reshape(-1, 2 * H).t() @ previous.reshape(-1, H)
        return dx, dh, grad_recurrent, None


def bistable_sequence(x_proj: torch.Tensor, h0: torch.Tensor, recurrent: torch.Tensor, diagonal: bool):
    """BRC (``diagonal``: ``recurrent`` = [w_c, w_a], (2H,)) or nBRC (``recurrent`` = weight_hh, (2H, H))
    over ``x_proj`` (time, batch, 3H) = U x + b from state ``h0`` (batch, H).

    Returns ``(outputs (batch, time, H), h_T)``, differentiable once in every tensor argument. float32
    or float64 on a CUDA device; UsageError elsewhere (`longrnn.cells.lstm_sequence.triton_kernels`).
    """
    return _BistableSequence.apply(x_proj, h0, recurrent, diagonal)
