"""The minimal gated unit over a whole sequence as one Triton launch forward and one backward
(``engine="triton"``).

The equations and their hand-written backward are in `longrnn.kernels.mgu`; this module is the autograd
function around the two launches. Tested equal to `MGUCell.step` under autograd in outputs and every
gradient (`tests/test_triton_kernels.py`).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from longrnn.cells.lstm_sequence import triton_kernels


class _MGUSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_proj, h0, weight_hh):
        kernels = triton_kernels("mgu", x_proj.device, x_proj.dtype)
        x_proj, h0, weight_hh = (t.detach().contiguous() for t in (x_proj, h0, weight_hh))
        hs, saved = kernels.mgu_forward(x_proj, h0, weight_hh)
        ctx.kernels = kernels
        ctx.save_for_backward(weight_hh, hs, saved)
        return hs[1:].transpose(0, 1), hs[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_outputs, grad_h):
        weight_hh, hs, saved = ctx.saved_tensors  # hs: (T + 1, B, H), the initial state first
        grad_steps = torch.zeros_like(hs[1:]) if grad_outputs is None else grad_outputs.transpose(0, 1).contiguous()
        grad_h = torch.zeros_like(hs[0]) if grad_h is None else grad_h.contiguous()
        dx, dh = ctx.kernels.mgu_backward(saved, hs, weight_hh, grad_steps, grad_h)
        H, previous = hs.shape[-1], hs[:-1].reshape(-1, hs.shape[-1])
        gated = torch.sigmoid(saved[..., :H]).reshape(-1, H) * previous  # f ⊙ h_{t-1}, the candidate's input
        grad_f = dx[..., :H].reshape(-1, H).t() @ previous  # Σ_t dp_fᵀ h_{t-1}
        grad_h_block = dx[..., H:].reshape(-1, H).t() @ gated  # Σ_t duᵀ (f ⊙ h_{t-1})
        return dx, dh, torch.cat([grad_f, grad_h_block])


def mgu_sequence(x_proj: torch.Tensor, h0: torch.Tensor, weight_hh: torch.Tensor):
    """MGU over ``x_proj`` (time, batch, 2H) = W x + b from state ``h0`` (batch, H), with the recurrent
    weights ``weight_hh`` (2H, H) = [U_f; U_h].

    Returns ``(outputs (batch, time, H), h_T)``, differentiable once in every tensor argument. float32 or
    float64 on a CUDA device; UsageError elsewhere (`longrnn.cells.lstm_sequence.triton_kernels`).
    """
    return _MGUSequence.apply(x_proj, h0, weight_hh)
