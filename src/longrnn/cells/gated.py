"""Gated cells: ``lstm`` and ``gru``, with PyTorch's equations and parameter layout, and a choice of gate.

Each cell has its own step and a `fused_forward` that runs the whole sequence: torch's kernel (`torch.lstm`
/ `torch.gru`, the ops behind `torch.nn.LSTM` / `torch.nn.GRU`) with the cell's own parameters, or this
project's kernels (C++ on the CPU, Triton on CUDA) for the other gates and the CPU's GRU. The
forget gate (LSTM) / update gate (GRU) — the gate that decides how long the state is kept — can be:

* ``gate="sigmoid"``   σ, as in PyTorch (the only one torch's kernels compute);
* ``gate="fast"``      σ(sinh z) (Ohno et al., AAAI 2023), see `longrnn.functional.gates`;
* ``gate="softsign"``  the normalized softsign (the slowly saturating baseline of that paper);
* ``gate="refine"``    the refine gate of Gu et al. (ICML 2020): g = r(1-(1-f)²) + (1-r)f² with its own
                        gate r. For the LSTM this is the UR-LSTM cell: r takes the input gate's block
                        (same parameter count) and the input gate is tied to 1 - g. For the GRU, r is a
                        fourth gate block.

``weight_init="xavier_orthogonal"`` starts from Xavier-uniform input blocks, orthogonal recurrent blocks
and zero biases, as the warm-up paper's official code initialises its GRU (PyTorch's uniform init
otherwise). ``forget_init`` sets that gate's bias (`longrnn.cells.init`: default, constant:V, chrono:T_MAX,
uniform); the bias goes into ``bias_hh`` once and the same block of ``bias_ih`` is zeroed, so it is not
counted twice. With ``gate_parity=True`` (the default) the sigmoid-space biases are mapped into the chosen
gate's space (`longrnn.functional.gates.gate_bias`, asinh for the fast gate), so every gate starts from the same
gate values. With the refine gate, r's bias is -b (Gu et al.); with chrono, the LSTM input-gate bias is -b
(``chrono_input=False`` leaves the input gate at PyTorch's init: an ablation that separates the long
forget time scales from the nearly closed input gates σ(-b) that chrono also starts with).

Gate pre-activations and the LSTM cell state are computed in float32 even under autocast or in a
``.half()`` / ``.bfloat16()`` module (a float16 gate cannot hold a time scale above about 2,000 steps;
bfloat16 not above 256): the state carried from step to step is float32, and the recurrent product
casts h back to the weights' dtype. `longrnn.nn` returns outputs and final states in the input's dtype.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from longrnn.cells.base import Cell, at_least_float32, autocast_enabled, fused_sequence, zero_state
from longrnn.cells.init import (
    forget_biases,
    orthogonal_blocks,
    parse_forget_init,
    write_keep_gate_bias,
    xavier_uniform_blocks,
)
from longrnn.cells.kernel_sequences import KERNEL_ENGINES, gru_sequence, kernel_engine
from longrnn.cells.lstm_sequence import ENGINES, lstm_sequence
from longrnn.cells.registry import register
from longrnn.errors import check_bool, unknown
from longrnn.functional.gates import GATES, gate_bias, refine_gate

GATE_CHOICES = (*GATES, "refine")
# "xavier_orthogonal": Xavier-uniform input blocks, orthogonal recurrent blocks, zero biases, as the warm-up
# paper's official code (glambrechts/warmup, models_pytorch/cells.py) initialises its GRU
WEIGHT_INITS = ("default", "xavier_orthogonal")
LSTM_ENGINES = (*ENGINES, "step")  # step: the step loop under autograd, never a whole-sequence kernel
GRU_ENGINES = ("auto", "triton", "cpp", "step")  # auto: torch's kernel for the sigmoid gate, else a kernel engine


class _GatedCell(Cell):
    """Shared parts: parameter layout of ``n_blocks`` gate blocks, init, gate choice, fused dispatch."""

    base_blocks: int  # gate blocks of the plain cell (LSTM 4, GRU 3)
    keep_block: int  # index of the forget (LSTM) / update (GRU) block
    refine_block: int  # index of the refine gate's block when gate="refine"

    def __init__(self, input_size: int, hidden_size: int, gate: str, forget_init: str, gate_parity: bool,
                 weight_init: str = "default"):
        super().__init__()
        if gate not in GATE_CHOICES:
            raise unknown("gate", gate, GATE_CHOICES)
        if weight_init not in WEIGHT_INITS:
            raise unknown("weight_init", weight_init, WEIGHT_INITS)
        self.weight_init = weight_init
        parse_forget_init(forget_init)
        self.gate = gate
        self.forget_init = forget_init
        self.gate_parity = check_bool("gate_parity", gate_parity)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = hidden_size
        rows = self.n_blocks * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows))
        self.bias_hh = nn.Parameter(torch.empty(rows))
        self.reset_parameters()

    @property
    def n_blocks(self) -> int:
        """Gate blocks: the plain cell's, plus one for a refine gate that has no slot of its own."""
        return self.base_blocks + (self.gate == "refine" and self.refine_block == self.base_blocks)

    def block(self, tensor: torch.Tensor, index: int) -> torch.Tensor:
        """The rows of gate block ``index`` of a (n_blocks*H, ...) parameter."""
        H = self.hidden_size
        return tensor[index * H : (index + 1) * H]

    def reset_parameters(self) -> None:
        """``weight_init="default"``: PyTorch's uniform(-1/√H, 1/√H) for every parameter;
        ``"xavier_orthogonal"``: each gate block of ``weight_ih`` Xavier-uniform, each of ``weight_hh``
        orthogonal, biases zero (the warm-up paper's official GRU). Then the keep-gate bias from
        ``forget_init``."""
        if self.weight_init == "xavier_orthogonal":
            xavier_uniform_blocks(self.weight_ih, self.n_blocks)
            orthogonal_blocks(self.weight_hh, self.n_blocks)
            nn.init.zeros_(self.bias_ih)
            nn.init.zeros_(self.bias_hh)
        else:
            bound = 1.0 / math.sqrt(self.hidden_size)
            for p in self.parameters():
                nn.init.uniform_(p, -bound, bound)
        self.reset_keep_gate_bias()

    @torch.no_grad()
    def reset_keep_gate_bias(self) -> None:
        """Set the keep gate's bias (and its companions', `companion_blocks`) from ``forget_init``; nothing
        else changes ("default": nothing at all). Also used on weights loaded from elsewhere."""
        b = forget_biases(self.forget_init, self.hidden_size)
        if b is None:
            return
        b = b.to(self.bias_hh)
        keep = b if self.gate == "refine" or not self.gate_parity else gate_bias(self.gate, b)
        write_keep_gate_bias(self.bias_ih, self.bias_hh, self.hidden_size, self.keep_block, keep,
                             self.companion_blocks(), b)

    def companion_blocks(self) -> list[int]:
        """Blocks whose bias is set to -b with the keep gate's: the refine gate (Gu et al. 2020)."""
        return [self.refine_block] if self.gate == "refine" else []

    def keep_gate(self, a_keep: torch.Tensor, a_refine: torch.Tensor | None) -> torch.Tensor:
        """The forget / update gate value from its pre-activation (and the refine gate's)."""
        if self.gate == "refine":
            return refine_gate(torch.sigmoid(a_keep), torch.sigmoid(a_refine))
        return GATES[self.gate](a_keep)

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """W_ih x + b_ih for all gate blocks at once: (..., I) -> (..., n_blocks * H)."""
        return F.linear(x, self.weight_ih, self.bias_ih)

    @property
    def has_fused_kernel(self) -> bool:
        """Whether torch's fused kernel computes this cell: only the plain sigmoid gate, outside autocast."""
        return self.gate == "sigmoid" and not autocast_enabled(self.weight_hh.device)

    def weights(self) -> list[torch.Tensor]:
        """The parameter list in the order torch's fused ops expect."""
        return [self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]

    def extra_repr(self) -> str:
        init = f", weight_init={self.weight_init!r}" if self.weight_init != "default" else ""
        return f"{super().extra_repr()}, gate={self.gate!r}, forget_init={self.forget_init!r}{init}"


@register("lstm", "LSTM, PyTorch's equations; options gate (sigmoid|fast|softsign|refine), forget_init, weight_init")
class LSTMCell(_GatedCell):
    """Long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers, Schmidhuber & Cummins
    2000), with the equations of `torch.nn.LSTMCell` and a choice of forget gate φ:

        i = σ(W_ii x + b_ii + W_hi h + b_hi)        f = φ(W_if x + b_if + W_hf h + b_hf)
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)     o = σ(W_io x + b_io + W_ho h + b_ho)
        c' = f * c + i * g                          h' = o * tanh(c')

    Parameters ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias_ih``, ``bias_hh`` (4H), gate blocks
    in the order i, f, g, o. With ``gate="refine"`` (UR-LSTM, Gu et al. 2020) the i block holds the
    refine gate r, f becomes g_eff = r(1-(1-σ(a_f))²) + (1-r)σ(a_f)², and i = 1 - g_eff.
    State: the tuple ``(h, c)`` of (batch, H) tensors; output h.

    ``engine`` (eager | compiled | auto | step | triton | cpp) chooses how a whole sequence runs; it changes
    speed only, never a value. ``auto``: torch's kernel for the sigmoid gate; for the other gates the
    ``cpp`` kernel on the CPU and the ``triton`` one on a CUDA device (`kernel_engine`; where neither is
    at hand, with a warning, the compiled hand-written sequence for fast and softsign and the step loop
    for refine); its gradients can be differentiated again (gradient penalties: the sequence is then
    recomputed under autograd). ``step``: the step loop under autograd. ``eager`` / ``compiled``: the
    hand-written sequence for every single-input gate, the sigmoid one included (so gates can be
    compared on the same code path). ``triton``: that sequence as one Triton launch forward and one
    backward, for every gate, refine included (`longrnn.kernels.lstm`; float32/float64 on a CUDA device,
    the ``gpu`` extra); ``cpp``: the same on the CPU with the loop in C++ (`longrnn.kernels.cpu`). The
    refine gate runs the step loop under every other engine.
    """

    base_blocks = 4
    keep_block = 1
    refine_block = 0

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        gate: str = "sigmoid",
        forget_init: str = "default",
        gate_parity: bool = True,
        engine: str = "auto",
        chrono_input: bool = True,
        weight_init: str = "default",
    ):
        if engine not in LSTM_ENGINES:
            raise unknown("engine", engine, LSTM_ENGINES)
        self.engine = engine
        self.chrono_input = check_bool("chrono_input", chrono_input)
        super().__init__(input_size, hidden_size, gate, forget_init, gate_parity, weight_init)

    def companion_blocks(self) -> list[int]:
        """With chrono, the input gate's bias is -b (Tallec & Ollivier 2018; off with ``chrono_input=False``);
        with refine, r's is."""
        kind, _ = parse_forget_init(self.forget_init)
        return [0] if self.gate == "refine" or (kind == "chrono" and self.chrono_input) else []

    def init_state(self, batch_size: int, device=None, dtype=None) -> tuple[torch.Tensor, torch.Tensor]:
        h = zero_state(batch_size, self.hidden_size, self.weight_hh, device, dtype)
        return h, torch.zeros_like(h)

    def preactivations(self, x_proj: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """All gate pre-activations W_ih x + b_ih + W_hh h + b_hh, at least float32, as blocks i, f, g, o."""
        recurrent = F.linear(h.to(self.weight_hh.dtype), self.weight_hh, self.bias_hh)
        return at_least_float32(x_proj + recurrent).chunk(4, -1)

    def forget_gate_values(self, x_proj: torch.Tensor, prev_state: tuple[torch.Tensor, torch.Tensor]):
        """f for every step at once, from projected inputs and the states before each step."""
        a_i, a_f, _, _ = self.preactivations(x_proj, prev_state[0])
        return self.keep_gate(a_f, a_i)

    def step(self, x_proj: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state
        a_i, a_f, a_g, a_o = self.preactivations(x_proj, h)
        f = self.keep_gate(a_f, a_i)  # the forget gate
        i = 1.0 - f if self.gate == "refine" else torch.sigmoid(a_i)
        c = f * c + i * torch.tanh(a_g)
        h = torch.sigmoid(a_o) * torch.tanh(c)
        return h, (h, c)

    def fused_forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """The whole sequence at once: torch's `torch.nn.LSTM` kernel (sigmoid gate, engine auto), the
        hand-written sequence of `longrnn.cells.lstm_sequence` (the engine's kernel: with engine auto the
        C++ or Triton one of `kernel_engine`, else the compiled one for the single-input gates while
        autograd records), or None (autocast; the refine gate without a kernel; engine auto without
        autograd and without a kernel, where the step loop is faster than the compiled sequence: 189
        against 247 ms in docs/benchmarks.md) so that the step loop runs. Also None while
        ``torch.compile`` traces the model: neither kernel traces, and the step loop gives the same numbers.
        With engine auto the gradients can be differentiated again (``twice_differentiable``)."""
        if torch.compiler.is_compiling() or self.engine == "step":
            return None
        if self.has_fused_kernel and self.engine == "auto":
            outputs, h_n, c_n = fused_sequence(torch.lstm, x, tuple(state), self.weights(), True, self.training)
            return outputs, (h_n, c_n)
        if autocast_enabled(x.device):
            return None
        engine = kernel_engine(self.engine, x.device) or self.engine
        if engine == "auto":
            engine = "compiled" if torch.is_grad_enabled() else None
        if engine is None or (self.gate == "refine" and engine not in KERNEL_ENGINES):
            return None
        # time-major (T, B, 4H), both biases in the product's one output (a second buffer of this size
        # costs its page faults on the CPU)
        x_proj = F.linear(x.transpose(0, 1), self.weight_ih, self.bias_ih + self.bias_hh)
        outputs, h_n, c_n = lstm_sequence(x_proj, *state, self.weight_hh, self.gate, engine,
                                          twice_differentiable=self.engine == "auto")
        return outputs, (h_n, c_n)


@register("gru", "GRU, PyTorch's equations; options gate (sigmoid|fast|softsign|refine), forget_init, weight_init")
class GRUCell(_GatedCell):
    """Gated recurrent unit (Cho et al. 2014, "Learning Phrase Representations using RNN
    Encoder-Decoder"), with the equations of `torch.nn.GRUCell` and a choice of update gate φ:

        r = σ(W_ir x + b_ir + W_hr h + b_hr)        z = φ(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

    z near 1 keeps the state, so ``forget_init`` acts on z's bias. Parameters ``weight_ih`` (3H, I),
    ``weight_hh`` (3H, H), ``bias_ih``, ``bias_hh`` (3H), blocks r, z, n; with ``gate="refine"`` a fourth
    block holds the refine gate of z. State: a (batch, H) tensor, which is also the output.

    ``engine`` (auto | triton | cpp | step) chooses how a whole sequence runs; it changes speed only.
    ``auto``: the ``cpp`` kernel on the CPU for every gate (where it builds; else torch's GRU kernel for
    the sigmoid gate), torch's GRU kernel for the sigmoid gate and the ``triton`` one for the others on a
    CUDA device (`kernel_engine`; else, with a warning, the step loop), with
    gradients that can be differentiated again; ``cpp``: the C++ loop
    (`longrnn.kernels.cpu`, built on first use) for every gate (the CPU);
    ``triton``: one Triton launch forward and one backward for every gate,
    refine included (`longrnn.cells.kernel_sequences`; float32/float64
    on a CUDA device, the ``gpu`` extra); ``step``: always the step loop.
    """

    base_blocks = 3
    keep_block = 1
    refine_block = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        gate: str = "sigmoid",
        forget_init: str = "default",
        gate_parity: bool = True,
        weight_init: str = "default",
        engine: str = "auto",
    ):
        if engine not in GRU_ENGINES:
            raise unknown("engine", engine, GRU_ENGINES)
        self.engine = engine
        super().__init__(input_size, hidden_size, gate, forget_init, gate_parity, weight_init)

    def init_state(self, batch_size: int, device=None, dtype=None) -> torch.Tensor:
        return zero_state(batch_size, self.hidden_size, self.weight_hh, device, dtype)

    def blocks(self, x_proj: torch.Tensor, h: torch.Tensor):
        """Input and recurrent pre-activation blocks, at least float32, kept apart (r scales only W_hn h + b_hn)."""
        x_blocks = at_least_float32(x_proj).chunk(self.n_blocks, -1)
        h_blocks = at_least_float32(F.linear(h.to(self.weight_hh.dtype), self.weight_hh, self.bias_hh)).chunk(
            self.n_blocks, -1)
        return x_blocks, h_blocks

    def update_gate(self, x_blocks, h_blocks) -> torch.Tensor:
        refine = x_blocks[3] + h_blocks[3] if self.gate == "refine" else None
        return self.keep_gate(x_blocks[1] + h_blocks[1], refine)

    def forget_gate_values(self, x_proj: torch.Tensor, prev_state: torch.Tensor):
        """z for every step at once, from projected inputs and the states before each step."""
        return self.update_gate(*self.blocks(x_proj, prev_state))

    def step(self, x_proj: torch.Tensor, state: torch.Tensor):
        x_blocks, h_blocks = self.blocks(x_proj, state)
        r = torch.sigmoid(x_blocks[0] + h_blocks[0])
        z = self.update_gate(x_blocks, h_blocks)  # the update gate
        n = torch.tanh(x_blocks[2] + r * h_blocks[2])
        h = (1 - z) * n + z * state
        return h, h

    def fused_forward(self, x: torch.Tensor, state: torch.Tensor):
        """The whole sequence at once: the `torch.nn.GRU` kernel with this cell's parameters (engine auto,
        sigmoid gate), `gru_sequence`'s kernels (engine triton or cpp, or with engine auto the kernel of
        `kernel_engine`, for every gate; outside autocast and torch.compile's tracing), or None when
        neither applies (the step loop runs). With engine auto the gradients can be differentiated again.
        Engine auto runs the sigmoid gate through the C++ kernel on the CPU where it builds: a training
        step there cost 0.77x `torch.nn.LSTM`'s, torch's own GRU 1.37-1.49x (docs/benchmarks.md)."""
        if self.engine == "auto" and self.has_fused_kernel and not _cpp_runs_sigmoid_gru(x):
            outputs, h_n = fused_sequence(torch.gru, x, state, self.weights(), True, self.training)
            return outputs, h_n
        engine = kernel_engine(self.engine, x.device)
        if engine is None or autocast_enabled(x.device) or torch.compiler.is_compiling():
            return None
        H = self.hidden_size
        b_rz = self.bias_hh.clone()
        b_rz[2 * H : 3 * H] = 0  # b_hn is inside r's product: the kernel adds it
        x_proj = F.linear(x.transpose(0, 1), self.weight_ih, self.bias_ih + b_rz)  # time-major: (T, B, 3H or 4H)
        return gru_sequence(x_proj, state, self.weight_hh, self.bias_hh[2 * H : 3 * H], self.gate, engine,
                            twice_differentiable=self.engine == "auto")


def _cpp_runs_sigmoid_gru(x: torch.Tensor) -> bool:
    """Whether engine auto's sigmoid GRU takes the C++ kernel (on the CPU, where it builds, outside
    torch.compile's tracing) rather than torch's GRU."""
    if x.device.type != "cpu" or torch.compiler.is_compiling():
        return False
    from longrnn.kernels import cpu

    return cpu.available()
