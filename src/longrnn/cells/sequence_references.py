"""The kernels' equations as plain step loops under autograd: one reference per kernel of
`longrnn.kernels`, with that kernel's signature and conventions (``x_proj`` time-major (T, batch, ...),
biases where the kernel takes them), returning ``(outputs (batch, T, H), final state...)``.

They are what the hand-written backward passes of `longrnn.cells.kernel_sequences` fall back to when a
gradient must be differentiated again (``backward(create_graph=True)``: gradient penalties, Hessian-vector
products): the sequence is recomputed here and differentiated by autograd, which can differentiate its
own result again. Each computes in at least float32 and returns the dtype of ``x_proj``. Tested equal to
the kernels and to the cells' step loops (tests/test_kernel_references.py).
"""

from __future__ import annotations

import torch

from longrnn.cells.base import at_least_float32
from longrnn.functional.gates import GATES, refine_gate


def keep_gate(gate: str, a_keep: torch.Tensor, a_refine: torch.Tensor) -> torch.Tensor:
    """The forget (LSTM) or update (GRU) gate from its pre-activation; refine also reads ``a_refine``."""
    if gate == "refine":
        return refine_gate(torch.sigmoid(a_keep), torch.sigmoid(a_refine))
    return GATES[gate](a_keep)


def _finish(x_proj: torch.Tensor, outputs: list[torch.Tensor], *state: torch.Tensor):
    """(outputs (batch, T, H), *state) in the dtype of x_proj."""
    return tuple(t.to(x_proj.dtype) for t in (torch.stack(outputs, 1), *state))


def lstm_reference(x_proj, h0, c0, weight_hh, gate: str):
    """`longrnn.kernels.lstm.lstm_forward`'s LSTM: blocks i, f, g, o of x_proj + h W_hhᵀ (x_proj holds both
    biases; with the refine gate block i holds the refine gate's input and i = 1 - f)."""
    xs, h, c, weight = (at_least_float32(t) for t in (x_proj, h0, c0, weight_hh))
    outputs = []
    for xp in xs.unbind(0):
        a_i, a_f, a_g, a_o = torch.addmm(xp, h, weight.t()).chunk(4, -1)
        f = keep_gate(gate, a_f, a_i)
        i = 1 - f if gate == "refine" else torch.sigmoid(a_i)
        c = f * c + i * torch.tanh(a_g)
        h = torch.sigmoid(a_o) * torch.tanh(c)
        outputs.append(h)
    return _finish(x_proj, outputs, h, c)


def gru_reference(x_proj, h0, weight_hh, bias_hn, gate: str):
    """`longrnn.kernels.gru.gru_forward`'s GRU: blocks r, z, n(, q) of x_proj and of h W_hhᵀ, with b_hn
    inside the reset gate's product (x_proj holds the other recurrent biases)."""
    xs, h, weight, b_hn = (at_least_float32(t) for t in (x_proj, h0, weight_hh, bias_hn))
    blocks = weight.shape[0] // h.shape[-1]
    outputs = []
    for xp in xs.unbind(0):
        x_b, h_b = xp.chunk(blocks, -1), (h @ weight.t()).chunk(blocks, -1)
        r = torch.sigmoid(x_b[0] + h_b[0])
        z = keep_gate(gate, x_b[1] + h_b[1], x_b[-1] + h_b[-1])
        n = torch.tanh(x_b[2] + r * (h_b[2] + b_hn))
        h = (1 - z) * n + z * h
        outputs.append(h)
    return _finish(x_proj, outputs, h)


def bistable_reference(x_proj, h0, recurrent, diagonal: bool):
    """`longrnn.kernels.bistable`'s BRC (``diagonal``: ``recurrent`` = [w_c, w_a]) or nBRC (``recurrent`` =
    W_hh (2H, H)), x_proj = U x + b in blocks c, a, h."""
    xs, h, w = (at_least_float32(t) for t in (x_proj, h0, recurrent))
    outputs = []
    for xp in xs.unbind(0):
        x_c, x_a, x_h = xp.chunk(3, -1)
        m_c, m_a = (h.repeat(1, 2) * w if diagonal else h @ w.t()).chunk(2, -1)
        c, a = torch.sigmoid(x_c + m_c), 1 + torch.tanh(x_a + m_a)
        h = c * h + (1 - c) * torch.tanh(x_h + a * h)
        outputs.append(h)
    return _finish(x_proj, outputs, h)


def mgu_reference(x_proj, h0, weight_hh):
    """`longrnn.kernels.mgu`'s MGU, x_proj = W x + b in blocks f, h, weight_hh = [U_f; U_h]."""
    xs, h, weight = (at_least_float32(t) for t in (x_proj, h0, weight_hh))
    u_f, u_h = weight.chunk(2, 0)
    outputs = []
    for xp in xs.unbind(0):
        x_f, x_h = xp.chunk(2, -1)
        f = torch.sigmoid(x_f + h @ u_f.t())
        h = (1 - f) * h + f * torch.tanh(x_h + (f * h) @ u_h.t())
        outputs.append(h)
    return _finish(x_proj, outputs, h)


def plrnn_reference(x_proj, z0, A, W, h):
    """`longrnn.kernels.plrnn`'s PLRNN: z_t = A ⊙ z_{t-1} + relu(z_{t-1}) Wᵀ + h + x_proj_t."""
    xs, z, A, W, h = (at_least_float32(t) for t in (x_proj, z0, A, W, h))
    outputs = []
    for xp in xs.unbind(0):
        z = A * z + torch.relu(z) @ W.t() + h + xp
        outputs.append(z)
    return _finish(x_proj, outputs, z)


REFERENCES = {"lstm": lstm_reference, "gru": gru_reference, "bistable": bistable_reference,
              "mgu": mgu_reference, "plrnn": plrnn_reference}
