"""The GRU over a whole sequence as one Triton launch forward and one backward (``engine="triton"``).

The equations and their hand-written backward are in `longrnn.kernels.gru`; this module is the autograd
function around the two launches. torch's own GRU kernel computes only the sigmoid update gate; this
one takes any single-input gate (sigmoid, fast, softsign). Tested equal to `GRUCell.step` under
autograd in outputs and every gradient (`tests/test_triton_kernels.py`).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from longrnn.cells.lstm_sequence import triton_kernels


class _GRUSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_proj, h0, weight_hh, bias_hn, gate):
        kernels = triton_kernels("gru", x_proj.device, x_proj.dtype)
        x_proj, h0, weight_hh, bias_hn = (t.detach().contiguous() for t in (x_proj, h0, weight_hh, bias_hn))
        hs, saved = kernels.gru_forward(x_proj, h0, weight_hh, bias_hn, gate)
        ctx.gate, ctx.kernels = gate, kernels
        ctx.save_for_backward(weight_hh, hs, saved)
        return hs[1:].transpose(0, 1), hs[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_outputs, grad_h):
        weight_hh, hs, saved = ctx.saved_tensors  # hs: (T + 1, B, H), the initial state first
        grad_steps = torch.zeros_like(hs[1:]) if grad_outputs is None else grad_outputs.transpose(0, 1).contiguous()
        grad_h = torch.zeros_like(hs[0]) if grad_h is None else grad_h.contiguous()
        dx, dg, dh = ctx.kernels.gru_backward(saved, hs, weight_hh, grad_steps, grad_h, ctx.gate)
        H = hs.shape[-1]
        grad_weight = dg.reshape(-1, 3 * H).t() @ hs[:-1].reshape(-1, H)  # Σ_t [da_r, da_z, dm]_tᵀ h_{t-1}
        return dx, dh, grad_weight, dg[..., 2 * H:].sum((0, 1)), None


def gru_sequence(x_proj: torch.Tensor, h0: torch.Tensor, weight_hh: torch.Tensor, bias_hn: torch.Tensor,
                 gate: str):
    """GRU over ``x_proj`` (time, batch, 3H) = W_ih x + b_ih + [b_hr, b_hz, 0] from state ``h0`` (batch, H),
    with recurrent weights ``weight_hh`` (3H, H) and the bias ``bias_hn`` (H) that the reset gate scales.

    Returns ``(outputs (batch, time, H), h_T)``, differentiable in every tensor argument (once: the
    backward is hand-written). ``gate``: the update gate, sigmoid, fast or softsign. float32 or float64
    on a CUDA device; UsageError elsewhere (`longrnn.cells.lstm_sequence.triton_kernels`).
    """
    return _GRUSequence.apply(x_proj, h0, weight_hh, bias_hn, gate)
