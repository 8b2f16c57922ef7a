"""The LSTM over a whole sequence with a hand-written backward pass, for any single-input forget gate.

torch's fused LSTM kernel computes only the sigmoid forget gate. For the fast and softsign gates the
cell would otherwise run its Python step under autograd, which records about 25 graph nodes per step
and multiplies the recurrent weight gradient out step by step. This module runs the same equations
(`longrnn.cells.gated.LSTMCell`) without a graph and differentiates them by hand:

    forward, per step t (a = x_proj_t + b_hh + W_hh h_{t-1}, blocks i, f, g, o):
        i = σ(a_i)   f = φ(a_f)   g = tanh(a_g)   o = σ(a_o)
        c_t = f c_{t-1} + i g     h_t = o tanh(c_t)

    backward, t = T..1, with dh = ∂L/∂h_t (from the output and from step t+1), dc carried:
        dc   += dh · o (1 - tanh²c_t)
        da    = [dc · g σ'(a_i),  dc · c_{t-1} φ'(a_f),  dc · i (1 - g²),  dh · tanh c_t σ'(a_o)]
        dc_{t-1} = dc · f         dh_{t-1} += da W_hh
    and after the loop, for all steps in one product each:
        ∂L/∂W_hh = Σ_t da_tᵀ h_{t-1}     ∂L/∂b_hh = Σ_t da_t     ∂L/∂x_proj_t = da_t

The forward saves, per step, the four factors that multiply dc (or dh) in ``da`` and the factor
o(1 - tanh²c), so a backward step is a few element-wise operations and one matrix product. Everything
of a step except its matrix product lives in two functions, `pointwise_forward` and
`pointwise_backward`; the ``compiled`` engine runs each as one `torch.compile`d kernel (the loop itself
stays in Python, as it must), the ``eager`` engine as plain torch ops. The ``triton`` engine runs the
whole loop, forward and backward, as one Triton launch each (`longrnn.kernels.lstm`; CUDA, or a CPU
under ``TRITON_INTERPRET=1``); it saves every step's pre-activations and cell state instead of the
factors and recomputes the gates. The ``cpp`` engine does the same on the CPU with the loop in C++
(`longrnn.kernels.cpu`: one BLAS product and one element-wise loop a step, nothing dispatched per
operation). All equal the step loop in outputs and gradients (float64 tests,
`tests/test_lstm_sequence.py`, `tests/test_triton_kernels.py`); speed in docs/benchmarks.md.
"""

from __future__ import annotations

import warnings
from functools import partial

import torch

from longrnn.cells.kernel_sequences import (
    KERNEL_ENGINES,
    differentiated,
    in_input_dtypes,
    incoming,
    inference_only,
    keep_for_backward,
    kernel_saved,
    prepared,
    recording,
)
from longrnn.cells.sequence_references import lstm_reference
from longrnn.functional.gates import gate_with_derivative

POINTWISE_ENGINES = ("eager", "compiled", "auto")  # the loop in Python, the step's pointwise part as named
ENGINES = (*POINTWISE_ENGINES, *KERNEL_ENGINES)


def pointwise_forward(a: torch.Tensor, c: torch.Tensor, gate: str):
    """Everything of one step after the matrix product: (h, c, factors of da, o(1 - tanh²c), f)."""
    H = c.shape[-1]
    s = torch.sigmoid(a)
    i, o = s[:, :H], s[:, 3 * H :]
    f, df = gate_with_derivative(gate, a[:, H : 2 * H])
    g = torch.tanh(a[:, 2 * H : 3 * H])
    c_new = f * c + i * g
    tc = torch.tanh(c_new)
    ds = s * (1 - s)
    factors = torch.cat([g * ds[:, :H], c * df, i * (1 - g * g), tc * ds[:, 3 * H :]], 1)
    return o * tc, c_new, factors, o * (1 - tc * tc), f


def pointwise_backward(dc, dh, factors, carry, f):
    """One backward step without the matrix product: (da, dc_{t-1}) from dc, dh and the saved factors."""
    dc = dc + dh * carry
    return torch.cat([dc, dc, dc, dh], 1) * factors, dc * f


class CompiledOrEager:
    """``torch.compile(fn)`` (one fused kernel per call on CPU and GPU); if compiling fails, warn once
    and run ``fn`` eagerly from then on, so a missing compiler costs speed, never a crash."""

    # One compiled variant per gate, dtype and thread count: more than torch's default of 8 per function.
    RECOMPILE_LIMIT = 64

    def __init__(self, fn):
        import torch._dynamo.config as dynamo_config

        name = "recompile_limit" if hasattr(dynamo_config, "recompile_limit") else "cache_size_limit"  # torch < 2.6
        setattr(dynamo_config, name, max(getattr(dynamo_config, name), self.RECOMPILE_LIMIT))
        self.fn = fn
        self.compiled = torch.compile(fn, fullgraph=True)  # sizes turn dynamic after the first recompile
        self.failed = False

    def __call__(self, *args):
        if not self.failed:
            try:
                return self.compiled(*args)
            except Exception as e:  # noqa: BLE001 - any compiler failure falls back to the same math
                self.failed = True
                warnings.warn(f"torch.compile failed ({type(e).__name__}: {e}); running the LSTM step eagerly",
                              stacklevel=2)
        return self.fn(*args)


_COMPILED: dict[str, tuple[CompiledOrEager, CompiledOrEager]] = {}


def pointwise_functions(engine: str):
    """The (forward, backward) pointwise functions of an engine: eager, or compiled (auto = compiled)."""
    if engine not in POINTWISE_ENGINES:
        raise ValueError(f"unknown engine {engine!r}; allowed: {', '.join(POINTWISE_ENGINES)}")
    if engine == "eager":
        return pointwise_forward, pointwise_backward
    if "compiled" not in _COMPILED:
        _COMPILED["compiled"] = (CompiledOrEager(pointwise_forward), CompiledOrEager(pointwise_backward))
    return _COMPILED["compiled"]


def _forward(x_proj, h, c, weight_hh, gate: str, step):
    """Run the sequence; return the per-step outputs, the final c and what the backward pass needs."""
    weight_t = weight_hh.t()
    outputs, factors, carry, forget = [], [], [], []
    for xp in x_proj.unbind(0):
        h, c, fa, ca, f = step(torch.addmm(xp, h, weight_t), c, gate)
        factors.append(fa)
        carry.append(ca)
        forget.append(f)
        outputs.append(h)
    return outputs, c, (factors, carry, forget)


class _LSTMSequence(torch.autograd.Function):
    # The per-step tensors stay in lists on ctx: stacking them would copy them into fresh buffers of
    # tens of MB, which on the CPU costs more page faults than the whole recurrence costs arithmetic.
    @staticmethod
    def forward(ctx, x_proj, h0, c0, weight_hh, gate, engine, twice, keep):
        ctx.gate, ctx.engine = gate, engine
        inputs = (x_proj, h0, c0, weight_hh)
        reference = twice and partial(lstm_reference, gate=gate)
        what = f"the LSTM with gate {gate!r} and engine {engine!r}"
        # detached: a compiled step would otherwise be specialised on each input's requires_grad flag
        x_proj, h0, c0, weight_hh = (t.detach() for t in inputs)
        if engine in KERNEL_ENGINES:
            ctx.kernels, (x_proj, h0, c0, weight_hh) = prepared(ctx, "lstm", x_proj, h0, c0, weight_hh, engine=engine)
            hs, cs, pre = ctx.kernels.lstm_forward(x_proj, h0, c0, weight_hh, gate, **inference_only(engine, keep))
            keep_for_backward(ctx, (weight_hh, hs, cs, pre), inputs, reference, what)
            return in_input_dtypes(ctx, hs[1:].transpose(0, 1), hs[-1], cs[-1])
        step, ctx.step_back = pointwise_functions(engine)
        outputs, c, (ctx.factors, ctx.carry, ctx.forget) = _forward(x_proj, h0, c0, weight_hh, gate, step)
        outputs = torch.stack(outputs)  # time-major (T, B, H): outputs[:-1] are the states h_{t-1}
        keep_for_backward(ctx, (weight_hh, h0, outputs), inputs, reference, what)
        return outputs.transpose(0, 1), outputs[-1], c

    @staticmethod
    def backward(ctx, *grads):
        return differentiated(ctx, grads, _backward_kernels if ctx.engine in KERNEL_ENGINES else _backward, options=4)


def _backward(ctx, grad_outputs, grad_h, grad_c):
    """The hand-written backward of the module docstring."""
    weight_hh, h0, outputs = kernel_saved(ctx)
    T = outputs.shape[0]
    # one contiguous copy, so that each step reads a contiguous slice (strided ones cost a copy each)
    grad_steps = [None] * T if grad_outputs is None else grad_outputs.transpose(0, 1).contiguous().unbind(0)
    dh = _add(grad_steps[-1], grad_h, like=h0)
    dc = torch.zeros_like(h0) if grad_c is None else grad_c
    da_all = [None] * T
    for t in range(T - 1, -1, -1):
        da, dc = ctx.step_back(dc, dh, ctx.factors[t], ctx.carry[t], ctx.forget[t])
        da_all[t] = da
        dh = (da @ weight_hh if t == 0 or grad_steps[t - 1] is None
              else torch.addmm(grad_steps[t - 1], da, weight_hh))
    da = torch.stack(da_all)  # (T, B, 4H): the gradient of x_proj
    H4 = da.shape[-1]
    grad_weight = da[0].t() @ h0 + da[1:].reshape(-1, H4).t() @ outputs[:-1].reshape(-1, H4 // 4)
    return da, dh, dc, grad_weight


def _backward_kernels(ctx, grad_outputs, grad_h, grad_c):
    """The same backward as one kernel call (Triton or C++); ∂L/∂W_hh as one product, as in `_backward`."""
    weight_hh, hs, cs, pre = kernel_saved(ctx)  # hs, cs: (T + 1, B, H), the initial state first
    da, dh, dc = ctx.kernels.lstm_backward(pre, cs, weight_hh, *incoming(hs, grad_outputs, grad_h, grad_c), ctx.gate)
    H4 = da.shape[-1]
    grad_weight = da.reshape(-1, H4).t() @ hs[:-1].reshape(-1, H4 // 4)  # Σ_t da_tᵀ h_{t-1}
    return in_input_dtypes(ctx, da, dh, dc, grad_weight)


def _add(a, b, like):
    """a + b where either may be None (an unused output's gradient); zeros if both are."""
    if a is None and b is None:
        return torch.zeros_like(like)
    return b if a is None else a if b is None else a + b


def lstm_sequence(x_proj: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weight_hh: torch.Tensor,
                  gate: str, engine: str = "auto", twice_differentiable: bool = False):
    """LSTM over ``x_proj`` (time, batch, 4H) = W_ih x + b_ih + b_hh, from state (h0, c0).

    ``x_proj`` is time-major so that every step reads a contiguous slice.

    Returns ``(outputs (batch, time, H), h_T, c_T)``; differentiable in every tensor argument through
    the hand-written backward above. ``gate`` is the forget gate: sigmoid, fast or softsign, or refine
    with engine "triton" or "cpp" only (``x_proj``'s block i then holds the refine gate's input; ValueError
    otherwise).
    ``engine``: "eager" runs the pointwise part of each step as separate torch ops, "compiled" (and
    "auto") as one `torch.compile`d function per step and direction — the matrix products stay outside;
    "triton" the whole sequence as one Triton launch forward and one backward (on a CUDA device), "cpp"
    as one C++ loop each (on the CPU; `longrnn.kernels.cpu`); for these two half precision is computed in
    float32, and another device is a UsageError (`longrnn.cells.kernel_sequences`).
    ``twice_differentiable``: the gradients can be differentiated again (`backward(create_graph=True)`:
    the sequence is then recomputed by `longrnn.cells.sequence_references.lstm_reference` under autograd),
    at the cost of keeping ``x_proj`` until the backward; without it they raise if differentiated again.
    """
    if gate == "refine" and engine not in KERNEL_ENGINES:
        raise ValueError(f"the refine gate's hand-written sequence is engine 'triton' or 'cpp' only, not {engine!r}")
    keep = recording(x_proj, h0, c0, weight_hh)
    return _LSTMSequence.apply(x_proj, h0, c0, weight_hh, gate, engine, twice_differentiable, keep)
