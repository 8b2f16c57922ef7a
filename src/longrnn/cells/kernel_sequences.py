"""The cells' whole sequences as one kernel call forward and one backward: the autograd functions around
the kernels of `longrnn.kernels`, whose docstrings hold the equations and their hand-written backward
passes. ``engine="triton"``: one Triton launch each (a CUDA device); ``engine="cpp"``: the time loop in
C++ (the CPU; the LSTM and the GRU, `longrnn.kernels.cpu`, whose functions have the Triton ones'
signatures, so one autograd function serves both). The LSTM's is an engine of
`longrnn.cells.lstm_sequence`; the GRU's, the bistable cells', the MGU's and the PLRNN's are here. Each
is tested equal to its cell's step loop under autograd in outputs and every gradient, and passes
gradcheck (`tests/test_triton_kernels.py`, `tests/test_cpu_kernels.py`).

Every function returns ``(outputs (batch, time, H), final state (batch, H))`` from ``x_proj`` (time,
batch, ...) and an initial state (batch, H); each is differentiable once (the backward is hand-written)
and runs float32 or float64 (Triton: on a CUDA device, or on a CPU under Triton's interpreter, for tests;
C++: on the CPU); float16 and bfloat16 inputs are computed in float32 (states and gradients included)
and the results returned in the inputs' dtypes. Anything else is a UsageError (`sequence_kernels`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings
from functools import partial

import torch

from longrnn.cells.base import at_least_float32
from longrnn.cells.sequence_references import (
    bistable_reference,
    gru_reference,
    mgu_reference,
    plrnn_reference,
)
from longrnn.errors import UsageError, require_extra

KERNEL_ENGINES = ("triton", "cpp")


def sequence_kernels(engine: str, name: str, device: torch.device, dtype: torch.dtype):
    """The kernels of cell ``name`` (lstm, gru, bistable, mgu, plrnn) for ``engine`` and tensors of ``dtype``
    on ``device``: `longrnn.kernels.NAME` for "triton", `longrnn.kernels.cpu` for "cpp". UsageError for
    a dtype other than a floating one, on a device the engine does not run on (`check_kernel_device`),
    or without what it needs (the ``gpu`` extra; a C++ compiler)."""
    if dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise UsageError(f"engine {engine!r} computes in float32 or float64 (float16 and bfloat16 inputs in "
                         f"float32), got {dtype}")
    check_kernel_device(engine, device)
    return importlib.import_module("longrnn.kernels.cpu" if engine == "cpp" else f"longrnn.kernels.{name}")


def triton_kernels(name: str, device: torch.device, dtype: torch.dtype):
    """`sequence_kernels` for engine "triton"."""
    return sequence_kernels("triton", name, device, dtype)


def kernel_engine(engine: str, device: torch.device | str, cpp: bool = True) -> str | None:
    """The kernel engine a cell built with ``engine`` runs on ``device``: ``engine`` itself when it is one of
    `KERNEL_ENGINES`; for "auto", "triton" on a CUDA device where the ``gpu`` extra is installed and "cpp"
    on the CPU (only where ``cpp``: the LSTM and the GRU) where its extension builds (the first call
    builds it: about half a minute, once per machine); otherwise None, and the cell runs its own path
    (after one warning per device kind naming what was missing)."""
    if engine in KERNEL_ENGINES:
        return engine
    if engine != "auto":
        return None
    kind = torch.device(device).type
    if kind == "cuda":
        if importlib.util.find_spec("triton") is not None:
            return "triton"
        _warn_once(kind, "the fused kernels need the gpu extra: pip install 'longrnn[gpu]'")
    elif kind == "cpu" and cpp:
        from longrnn.kernels import cpu

        if cpu.available():
            return "cpp"
        _warn_once(kind, f"its C++ kernels could not be built ({cpu.build_error()}); "
                         "they need a C++ compiler and the cpp extra: pip install 'longrnn[cpp]'")
    return None


_WARNED: set[str] = set()


def _warn_once(kind: str, why: str) -> None:
    if kind not in _WARNED:
        _WARNED.add(kind)
        warnings.warn(f"engine 'auto' runs without fused kernels on {kind!r}, which is slower: {why}", stacklevel=3)


def check_kernel_device(engine: str, device: torch.device | str) -> None:
    """UsageError unless ``engine`` can run on ``device``: "triton" as `check_triton_device`; "cpp" on the CPU,
    once its extension builds (`longrnn.kernels.cpu`; the first call builds it)."""
    if engine == "triton":
        check_triton_device(device)
        return
    kind = torch.device(device).type
    if kind != "cpu":
        raise UsageError(f"engine 'cpp' runs on the CPU, not on {kind!r}; use engine 'auto' (or 'triton' on CUDA)")
    from longrnn.kernels import cpu

    if not cpu.available():
        raise UsageError(f"engine 'cpp' needs its C++ extension, which could not be built here ({cpu.build_error()});"
                         " use engine 'auto'")


def check_triton_device(device: torch.device | str) -> None:
    """UsageError unless engine 'triton' can run on ``device`` (a CUDA device, or a CPU under Triton's
    interpreter) with the ``gpu`` extra installed."""
    kind = torch.device(device).type
    if kind != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise UsageError(f"engine 'triton' runs on a CUDA device, not on {kind!r} (on a CPU only "
                         "under Triton's interpreter, TRITON_INTERPRET=1, which is for tests); use engine 'auto'")
    require_extra("triton", "gpu")


def prepared(ctx, name: str, *tensors: torch.Tensor, engine: str = "triton"):
    """The kernels module ``name`` of ``engine`` for these tensors, and the tensors detached, contiguous and in
    at least float32; ``ctx.dtypes`` keeps their own dtypes (for `in_input_dtypes`)."""
    ctx.dtypes = tuple(t.dtype for t in tensors)
    kernels = sequence_kernels(engine, name, tensors[0].device, tensors[0].dtype)
    return kernels, tuple(at_least_float32(t).detach().contiguous() for t in tensors)


def in_input_dtypes(ctx, *tensors):
    """Each tensor in the dtype of the input at its place (``ctx.dtypes``); None stays None."""
    return tuple(None if t is None else t.to(dtype) for t, dtype in zip(tensors, ctx.dtypes))


def _sequence(ctx, hs: torch.Tensor):
    """(outputs (batch, time, H), final state) from the states hs (T + 1, batch, H), h_0 first, in the
    dtype of x_proj."""
    return in_input_dtypes(ctx, hs[1:].transpose(0, 1), hs[-1])


def incoming(hs: torch.Tensor, *grads):
    """The gradients reaching every step's output (made time-major) and the final states, as the kernels
    take them: contiguous, in hs's dtype, zeros where unused (None)."""
    steps, *last = grads
    steps = torch.zeros_like(hs[1:]) if steps is None else steps.transpose(0, 1).to(hs.dtype).contiguous()
    return steps, *(torch.zeros_like(hs[0]) if g is None else g.to(hs.dtype).contiguous() for g in last)


def recording(*tensors: torch.Tensor) -> bool:
    """Whether autograd records an operation on ``tensors``, so that a backward may follow (decided before
    an autograd function runs: inside its forward, recording is off)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def inference_only(engine: str, keep: bool) -> dict:
    """The keyword that tells a C++ forward no backward follows (``keep=False``: it then keeps one step's
    buffers instead of every step's); the Triton kernels always keep every step."""
    return {"keep": False} if engine == "cpp" and not keep else {}


def keep_for_backward(ctx, saved, inputs, reference, what: str) -> None:
    """Save what the kernel's backward reads (``saved``) and, where ``reference`` is given (a function of
    ``inputs`` from `longrnn.cells.sequence_references`: the sequences' twice-differentiable form), the
    inputs too, so that `differentiated` can recompute the sequence when a gradient must be differentiated
    again. That costs the memory of ``x_proj`` until the backward; without ``reference`` the gradients
    raise if differentiated again, naming ``what`` (e.g. "the GRU with gate 'fast' and engine 'cpp'")."""
    ctx.reference, ctx.what, ctx.n_saved = reference or None, what, len(saved)
    ctx.save_for_backward(*saved, *(inputs if reference else ()))


def kernel_saved(ctx):
    """What `keep_for_backward` saved for the kernel's backward."""
    return ctx.saved_tensors[: ctx.n_saved]


def differentiated(ctx, grads, first_order, options: int):
    """An autograd function's backward: ``first_order(ctx, *grads)`` (the hand-written backward, the
    gradients of its tensor inputs) followed by None for its ``options`` other arguments. Under
    ``backward(create_graph=True)`` the gradients must be differentiable again: they are recomputed through
    the reference (`keep_for_backward`) by autograd, or, without one, carry a node that raises a
    RuntimeError naming the engines that allow it if anything differentiates them."""
    if torch.is_grad_enabled() and ctx.reference is not None:
        return *_recomputed(ctx, grads), *[None] * options
    with torch.no_grad():
        found = first_order(ctx, *grads)
    if torch.is_grad_enabled():
        found = _raising_if_differentiated(found, f"{ctx.what} runs a hand-written backward, whose gradients "
                                           "cannot be differentiated again; build it with engine 'auto' or 'step' "
                                           "for second derivatives")
    return *found, *[None] * options


def _recomputed(ctx, grads):
    """The gradients of ctx.reference(*inputs) with respect to the inputs that need them, with their graph."""
    inputs = ctx.saved_tensors[ctx.n_saved :]
    with torch.enable_grad():
        outputs = ctx.reference(*inputs)
    pairs = [(o, g) for o, g in zip(outputs, grads) if g is not None]
    wanted = [i for i in range(len(inputs)) if ctx.needs_input_grad[i]]
    found = torch.autograd.grad([o for o, _ in pairs], [inputs[i] for i in wanted], [g for _, g in pairs],
                                create_graph=True, allow_unused=True)
    result = [None] * len(inputs)
    for i, g in zip(wanted, found):
        result[i] = g
    return result


def _raising_if_differentiated(grads, message: str):
    """``grads`` (None kept) behind torch's DelayedError node: differentiating them raises ``message``
    (as torch's once_differentiable does, with a message that names the way out)."""
    tensors = [g for g in grads if g is not None]
    if not tensors:
        return grads
    raising = torch._C._functions.DelayedError(message.encode(), len(tensors))(
        *[g.detach().requires_grad_() for g in tensors])
    raising = iter(raising if isinstance(raising, tuple) else (raising,))
    return tuple(None if g is None else next(raising) for g in grads)


class _GRUSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_proj, h0, weight_hh, bias_hn, gate, engine, twice, keep):
        inputs = (x_proj, h0, weight_hh, bias_hn)
        ctx.kernels, (x_proj, h0, weight_hh, bias_hn) = prepared(ctx, "gru", *inputs, engine=engine)
        hs, saved = ctx.kernels.gru_forward(x_proj, h0, weight_hh, bias_hn, gate, **inference_only(engine, keep))
        ctx.gate = gate
        keep_for_backward(ctx, (weight_hh, hs, saved), inputs, twice and partial(gru_reference, gate=gate),
                          f"the GRU with gate {gate!r} and engine {engine!r}")
        return _sequence(ctx, hs)

    @staticmethod
    def backward(ctx, *grads):
        return differentiated(ctx, grads, _gru_backward, options=4)


def _gru_backward(ctx, grad_outputs, grad_h):
    weight_hh, hs, saved = kernel_saved(ctx)
    dx, dg, dh = ctx.kernels.gru_backward(saved, hs, weight_hh, *incoming(hs, grad_outputs, grad_h), ctx.gate)
    H = hs.shape[-1]
    grad_weight = dg.reshape(-1, dg.shape[-1]).t() @ hs[:-1].reshape(-1, H)  # Σ_t [da_r, da_z, dm(, da_q)]_tᵀ h_{t-1}
    return in_input_dtypes(ctx, dx, dh, grad_weight, dg[..., 2 * H : 3 * H].sum((0, 1)))


def gru_sequence(x_proj, h0, weight_hh, bias_hn, gate: str, engine: str = "triton", twice_differentiable: bool = False):
    """GRU (`longrnn.kernels.gru`) over ``x_proj`` (time, batch, 3H) = W_ih x + b_ih + [b_hr, b_hz, 0], with
    ``weight_hh`` (3H, H), the bias ``bias_hn`` (H) that the reset gate scales, and the update gate
    ``gate`` (sigmoid, fast or softsign); with ``gate="refine"`` x_proj and weight_hh have a fourth block,
    the refine gate's (x_proj's with its b_hq). ``engine``: "triton" or "cpp" (`sequence_kernels`);
    ``twice_differentiable`` as `keep_for_backward`."""
    keep = recording(x_proj, h0, weight_hh, bias_hn)
    return _GRUSequence.apply(x_proj, h0, weight_hh, bias_hn, gate, engine, twice_differentiable, keep)


class _BistableSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_proj, h0, recurrent, diagonal, twice):
        inputs = (x_proj, h0, recurrent)
        ctx.kernels, (x_proj, h0, recurrent) = prepared(ctx, "bistable", *inputs)
        hs, saved = ctx.kernels.bistable_forward(x_proj, h0, recurrent, diagonal)
        ctx.diagonal = diagonal
        keep_for_backward(ctx, (recurrent, hs, saved), inputs, twice and partial(bistable_reference, diagonal=diagonal),
                          f"the {'BRC' if diagonal else 'nBRC'} with engine 'triton'")
        return _sequence(ctx, hs)

    @staticmethod
    def backward(ctx, *grads):
        return differentiated(ctx, grads, _bistable_backward, options=2)


def _bistable_backward(ctx, grad_outputs, grad_h):
    recurrent, hs, saved = kernel_saved(ctx)
    dx, dh = ctx.kernels.bistable_backward(saved, hs, recurrent, *incoming(hs, grad_outputs, grad_h), ctx.diagonal)
    H = hs.shape[-1]
    dp, previous = dx[..., : 2 * H], hs[:-1]
    if ctx.diagonal:  # ∂L/∂[w_c, w_a] = Σ_t [dp_c ⊙ h_{t-1}, dp_a ⊙ h_{t-1}]
        grad_recurrent = (dp * previous.repeat(1, 1, 2)).sum((0, 1))
    else:  # ∂L/∂W_hh = Σ_t [dp_c, dp_a]_tᵀ h_{t-1}
        grad_recurrent = dp.reshape(-1, 2 * H).t() @ previous.reshape(-1, H)
    return in_input_dtypes(ctx, dx, dh, grad_recurrent)


def bistable_sequence(x_proj, h0, recurrent, diagonal: bool, twice_differentiable: bool = False):
    """BRC (``diagonal``: ``recurrent`` = [w_c, w_a], (2H,)) or nBRC (``recurrent`` = weight_hh, (2H, H))
    (`longrnn.kernels.bistable`) over ``x_proj`` (time, batch, 3H) = U x + b; ``twice_differentiable`` as
    `keep_for_backward`."""
    return _BistableSequence.apply(x_proj, h0, recurrent, diagonal, twice_differentiable)


class _MGUSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_proj, h0, weight_hh, twice):
        inputs = (x_proj, h0, weight_hh)
        ctx.kernels, (x_proj, h0, weight_hh) = prepared(ctx, "mgu", *inputs)
        hs, saved = ctx.kernels.mgu_forward(x_proj, h0, weight_hh)
        keep_for_backward(ctx, (weight_hh, hs, saved), inputs, twice and mgu_reference, "the MGU with engine 'triton'")
        return _sequence(ctx, hs)

    @staticmethod
    def backward(ctx, *grads):
        return differentiated(ctx, grads, _mgu_backward, options=1)


def _mgu_backward(ctx, grad_outputs, grad_h):
    weight_hh, hs, saved = kernel_saved(ctx)
    dx, dh = ctx.kernels.mgu_backward(saved, hs, weight_hh, *incoming(hs, grad_outputs, grad_h))
    H = hs.shape[-1]
    previous = hs[:-1].reshape(-1, H)
    gated = torch.sigmoid(saved[..., :H]).reshape(-1, H) * previous  # f ⊙ h_{t-1}, the candidate's input
    grad_f = dx[..., :H].reshape(-1, H).t() @ previous  # Σ_t dp_fᵀ h_{t-1}
    grad_candidate = dx[..., H:].reshape(-1, H).t() @ gated  # Σ_t duᵀ (f ⊙ h_{t-1})
    return in_input_dtypes(ctx, dx, dh, torch.cat([grad_f, grad_candidate]))


def mgu_sequence(x_proj, h0, weight_hh, twice_differentiable: bool = False):
    """MGU (`longrnn.kernels.mgu`) over ``x_proj`` (time, batch, 2H) = W x + b, with ``weight_hh`` (2H, H)
    = [U_f; U_h]; ``twice_differentiable`` as `keep_for_backward`."""
    return _MGUSequence.apply(x_proj, h0, weight_hh, twice_differentiable)


class _PLRNNSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_proj, z0, A, W, h, twice):
        inputs = (x_proj, z0, A, W, h)
        ctx.kernels, (x_proj, z0, A, W, h) = prepared(ctx, "plrnn", *inputs)
        zs = ctx.kernels.plrnn_forward(x_proj, z0, A, W, h)
        keep_for_backward(ctx, (A, W, zs), inputs, twice and plrnn_reference, "the PLRNN with engine 'triton'")
        return _sequence(ctx, zs)

    @staticmethod
    def backward(ctx, *grads):
        return differentiated(ctx, grads, _plrnn_backward, options=1)


def _plrnn_backward(ctx, grad_outputs, grad_z):
    A, W, zs = kernel_saved(ctx)
    dx, dz0 = ctx.kernels.plrnn_backward(zs, A, W, *incoming(zs, grad_outputs, grad_z))
    M, previous = zs.shape[-1], zs[:-1]
    grad_W = dx.reshape(-1, M).t() @ torch.relu(previous).reshape(-1, M)  # Σ_t dz_tᵀ relu(z_{t-1})
    return in_input_dtypes(ctx, dx, dz0, (dx * previous).sum((0, 1)), grad_W, dx.sum((0, 1)))


def plrnn_sequence(x_proj, z0, A, W, h, twice_differentiable: bool = False):
    """PLRNN (`longrnn.kernels.plrnn`): z_t = A ⊙ z_{t-1} + relu(z_{t-1}) Wᵀ + h + x_proj_t over ``x_proj``
    (time, batch, M) = C s, with A and h (M,) and the coupling W (M, M), its diagonal masked by the caller;
    ``twice_differentiable`` as `keep_for_backward`."""
    return _PLRNNSequence.apply(x_proj, z0, A, W, h, twice_differentiable)
