"""Convolutional recurrent cells on a periodic lattice: ``conv_unitary`` and its unconstrained twin ``conv_rnn``.

``conv_unitary`` (Magnasco 2023, "Convolutional unitary or orthogonal recurrent neural networks",
arXiv:2302.07396; the author's page gives the recursion Z_{n+1} = φ(U ⊛ Z_n + I_n)):

    h_t = φ(U ⊛ h_{t-1} + input_map(x_t) + b),    U = exp_⊛(P - P†)

The state h lives on a 1-D or 2-D periodic lattice with c channels; it is real (U orthogonal) or
complex (U unitary). U is never formed in space: its spectrum Û(k) = expm(Â(k)) is computed once per
sequence (a `torch.nn.utils.parametrize` parametrization, cached by `longrnn.models.Recurrent`) and
applied by FFT every step (`longrnn.functional.convexp`). The generator P is learned on a small odd stencil
(``stencil=3``, the default: 3 or 3×3 taps per channel pair) or on the whole lattice (``stencil=0``,
also the default on lattices narrower than 3 sites).

φ: ``"magnasco"`` φ(z) = z / sqrt(1 + |z|²) (phase-preserving; the default for complex states),
``"modrelu"`` sign(z) relu(|z| + b) (Arjovsky et al. 2016; the default for real states, b its
per-unit bias) or ``"tanh"`` (real states only).

b is the modReLU bias with ``"modrelu"`` (the input map then has none, as in expRNN), else the input
map's bias (complex for complex states). ``init_scale`` sets the size of the initial generator:
P ~ N(0, init_scale² / taps), so Â(k) is O(init_scale) whatever the stencil, and U starts near δ·I.

input_map: ``"linear"`` — a dense map from a feature vector (sequence tasks such as ``copy``);
``"conv"`` — a circular convolution with an odd ``input_stencil`` from input channels laid out on the
same lattice (spatial tasks: x_t has ``c_in · N`` features, channel-major, c_in = input_size / N).

Sizes and outputs. The state has ``hidden_size = channels · N`` units on N lattice sites. With
``lattice`` given (``"32x32"``, ``"64"``, ``[8, 8]``) ``channels`` defaults to ``hidden_size / N``, and a
``hidden_size`` that is not ``channels · N`` is a UsageError; without it the lattice is 1-D with
``hidden_size / channels`` sites (``channels`` defaulting to 1). The state is the flat
``(batch, channels · N)`` tensor, channel-major (reshape to ``(batch, channels, *lattice)``). Output:
the state itself for real cells; for complex cells the real parts followed by the imaginary parts,
``output_size = 2 · hidden_size``, so the linear readout stays real.

``conv_rnn`` is the comparison "convolutional tanh RNN with an unconstrained kernel": the same cell
with ``constrained=False`` and ``nonlinearity="tanh"`` by default. Its recurrent kernel K is free
(no skew part, no exponential), initialised as δ·I + the same small random stencil, i.e. the
first-order expansion of the constrained cell's exp_⊛(A) at initialisation; it is applied by FFT too.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from longrnn.cells.base import Cell, at_least_float32
from longrnn.cells.graphs import GRAPH_ENGINES, graphed_sequence
from longrnn.cells.modrelu import ModReLU
from longrnn.cells.registry import register
from longrnn.errors import UsageError, check_bool, check_choice, check_positive, unknown
from longrnn.functional.convexp import (
    apply_spectrum,
    conv_exp_spectrum,
    embed_stencil,
    kernel_spectrum,
    skew,
    spectrum_to_kernel,
)
from longrnn.functional.lattice import lattice_text, parse_lattice, sites

NONLINEARITIES = ("magnasco", "modrelu", "tanh")
INPUT_MAPS = ("linear", "conv")
DEFAULT_STENCIL = 3
COMPLEX_OF = {torch.float16: torch.complex64, torch.bfloat16: torch.complex64, torch.float32: torch.complex64,
              torch.float64: torch.complex128}


def magnasco(z: torch.Tensor) -> torch.Tensor:
    """φ(z) = z / sqrt(1 + |z|²): keeps the phase, squashes the modulus below 1 (real or complex z)."""
    return z * torch.rsqrt(1 + z.abs() ** 2)


class KernelSpectrum(nn.Module):
    """Parametrization: free parameter P -> the recurrent operator's spectrum (*frequencies, c, c).

    ``exponential=True``: Û = expm of the spectrum of skew(P) (orthogonal / unitary operator);
    ``False``: the spectrum of P itself (unconstrained). A complex P is stored as real pairs in its last
    axis. Real kernels use the one-sided spectrum.
    """

    def __init__(self, lattice: tuple[int, ...], stencil: int, exponential: bool, complex_state: bool):
        super().__init__()
        self.lattice, self.stencil = lattice, stencil
        self.exponential, self.complex_state = exponential, complex_state

    @property
    def onesided(self) -> bool:
        return not self.complex_state

    def kernel(self, P: torch.Tensor) -> torch.Tensor:
        """The ``(c, c, *lattice)`` kernel P on the lattice (complex for complex states)."""
        K = torch.view_as_complex(P) if self.complex_state else P
        return embed_stencil(K, self.lattice) if self.stencil else K

    def forward(self, P: torch.Tensor) -> torch.Tensor:
        K = self.kernel(at_least_float32(P))  # FFTs and expm in float32 at least (none for half on the CPU)
        if self.exponential:
            return conv_exp_spectrum(skew(K), onesided=self.onesided)
        return kernel_spectrum(K, onesided=self.onesided)


@register("conv_unitary", "convolutional orthogonal/unitary RNN, U = exp_⊛(A) by FFT (Magnasco 2023)")
class ConvUnitaryCell(Cell):
    """h_t = φ(U ⊛ h_{t-1} + input_map(x_t) + b) on a periodic lattice; see the module docstring."""

    default_nonlinearity = ("modrelu", "magnasco")  # (real state, complex state)
    default_constrained = True  # constrained=None takes this

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        lattice=None,
        channels: int | None = None,
        complex_state: bool = False,
        stencil: int | None = None,
        nonlinearity: str | None = None,
        input_map: str = "linear",
        input_stencil: int = 3,
        init_scale: float = 0.3,
        constrained: bool | None = None,
        engine: str = "auto",
    ):
        super().__init__()
        if engine not in GRAPH_ENGINES:
            raise unknown("engine", engine, GRAPH_ENGINES)
        self.engine = engine
        self.complex_state = check_bool("complex_state", complex_state)
        self.constrained = check_bool("constrained", self.default_constrained if constrained is None else constrained)
        self.lattice, channels = self._lattice(lattice, hidden_size, channels)
        self.channels = channels
        if self.constrained and not complex_state and channels == 1 and max(self.lattice) <= 2:
            warnings.warn(f"on the lattice {lattice_text(self.lattice)} with one real channel the skew generator "
                          "P - Pᵀ is zero (every offset is its own negative), so U stays the identity and cannot "
                          "learn; use a side of 3 or more, channels >= 2, complex_state=True or constrained=False",
                          UserWarning, stacklevel=2)
        self.sites = sites(self.lattice)
        self.input_size = input_size
        self.hidden_size = channels * self.sites
        self.output_size = 2 * self.hidden_size if complex_state else self.hidden_size
        if stencil is None:  # 3 taps per axis, or the whole lattice when that is smaller
            stencil = DEFAULT_STENCIL if min(self.lattice) >= DEFAULT_STENCIL else 0
        self.stencil = self._stencil("stencil", stencil, allow_full=True)
        self.nonlinearity = check_choice(
            "nonlinearity", nonlinearity or self.default_nonlinearity[int(complex_state)], NONLINEARITIES
        )
        if complex_state and self.nonlinearity != "magnasco":
            raise UsageError(f"complex states take nonlinearity 'magnasco', got {self.nonlinearity!r}")
        self.input_map = check_choice("input_map", input_map, INPUT_MAPS)
        self.input_stencil = (
            self._stencil("input_stencil", input_stencil, allow_full=False) if input_map == "conv" else input_stencil
        )
        self.init_scale = float(init_scale)

        parts = 2 if complex_state else 1  # real and imaginary parts of the input drive
        modrelu = self.nonlinearity == "modrelu"
        if input_map == "linear":
            self.input_kernel = nn.Linear(input_size, parts * self.hidden_size, bias=not modrelu)
        else:
            if input_size % self.sites:
                raise UsageError(
                    f"input_map 'conv' needs input_size ({input_size}) to be a multiple of the lattice's "
                    f"{self.sites} sites (channels laid out on the lattice); use input_map 'linear'"
                )
            conv = nn.Conv1d if len(self.lattice) == 1 else nn.Conv2d
            self.input_kernel = conv(input_size // self.sites, parts * channels, input_stencil, bias=not modrelu)
        self.activation = ModReLU(self.hidden_size) if modrelu else (nn.Tanh() if self.nonlinearity == "tanh" else None)

        self.recurrent = nn.Module()
        self.recurrent.weight = nn.Parameter(self._initial_generator())
        spectrum = KernelSpectrum(self.lattice, self.stencil, exponential=self.constrained, complex_state=complex_state)
        parametrize.register_parametrization(self.recurrent, "weight", spectrum, unsafe=True)

    # --- construction helpers ----------------------------------------------------------------
    @staticmethod
    def _lattice(lattice, hidden_size: int, channels: int | None) -> tuple[tuple[int, ...], int]:
        """(lattice, channels) with ``hidden_size = channels · sites``; a size that cannot hold is a UsageError."""
        check_positive("hidden_size", hidden_size)
        if channels is not None:
            check_positive("channels", channels)
        if lattice is None:
            channels = 1 if channels is None else channels
            if hidden_size % channels:
                raise UsageError(f"hidden_size ({hidden_size}) must be a multiple of channels ({channels}) "
                                 "without a lattice")
            return (hidden_size // channels,), channels
        lattice = parse_lattice(lattice)
        n = sites(lattice)
        if channels is None and hidden_size % n == 0:
            return lattice, hidden_size // n
        if channels is not None and hidden_size == channels * n:
            return lattice, channels
        given = f"× {channels} channel(s) = {channels * n}" if channels is not None else "× channels"
        raise UsageError(f"hidden_size {hidden_size} does not fit the lattice {lattice_text(lattice)} ({n} sites) "
                         f"{given}: hidden_size must be channels × {n}, e.g. {n * (channels or 1)}")

    def _stencil(self, name: str, value: int, allow_full: bool) -> int:
        check_positive(name, value, allow_zero=allow_full)
        if value and (value % 2 == 0 or value > min(self.lattice)):
            full = " (0: the whole lattice)" if allow_full else ""
            raise UsageError(
                f"{name} must be odd and at most the lattice size {min(self.lattice)}{full}, got {value!r}"
            )
        return value

    def _initial_generator(self) -> torch.Tensor:
        """P ~ N(0, (init_scale / sqrt(taps))²), so Â(k) has about the same size whatever the support.

        The unconstrained kernel adds δ·I (identity at offset 0): K = I + P ≈ exp_⊛(A) to first order.
        """
        c = self.channels
        shape = (c, c, *((self.stencil,) * len(self.lattice) if self.stencil else self.lattice))
        taps = math.prod(shape[2:])
        P = torch.randn(*shape, *((2,) if self.complex_state else ())) * (self.init_scale / math.sqrt(taps))
        if not self.constrained:
            centre = (*(s // 2 for s in shape[2:]),) if self.stencil else (0,) * len(self.lattice)
            eye = torch.eye(c)
            if self.complex_state:
                P[(slice(None), slice(None), *centre, 0)] += eye
            else:
                P[(slice(None), slice(None), *centre)] += eye
        return P

    # --- inspection ---------------------------------------------------------------------------
    @property
    def recurrent_spectrum(self) -> torch.Tensor:
        """Û(k), ``(*frequencies, c, c)``; one-sided (last axis N//2 + 1) for real states."""
        return self.recurrent.weight

    def recurrent_kernel(self) -> torch.Tensor:
        """The spatial ``(c, c, *lattice)`` kernel of U (full support): for pictures and tests."""
        return spectrum_to_kernel(
            self.recurrent_spectrum, self.lattice, real=not self.complex_state, onesided=not self.complex_state
        )

    def generator_kernel(self) -> torch.Tensor:
        """A = P - P† on the lattice (constrained) or the free kernel K (unconstrained)."""
        param = self.recurrent.parametrizations.weight
        K = param[0].kernel(param.original)
        return skew(K) if self.constrained else K

    # --- the cell protocol --------------------------------------------------------------------
    def init_state(self, batch_size: int, device=None, dtype=None) -> torch.Tensor:
        like = self.recurrent.parametrizations.weight.original
        device = like.device if device is None else device
        dtype = like.dtype if dtype is None else dtype
        if self.complex_state and not dtype.is_complex:
            dtype = COMPLEX_OF[dtype]
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """input_map(x) (+ b unless modReLU holds it): (..., input_size) -> (..., hidden_size), complex for
        complex states."""
        if self.input_map == "linear":
            drive = self.input_kernel(x)
        else:
            lead = x.shape[:-1]
            grid = x.reshape(-1, x.shape[-1] // self.sites, *self.lattice)
            pad = (self.input_stencil // 2,) * (2 * len(self.lattice))
            drive = self.input_kernel(F.pad(grid, pad, mode="circular")).reshape(*lead, -1)
        if self.complex_state:
            drive = at_least_float32(drive).unflatten(-1, (2, self.hidden_size))
            drive = torch.complex(drive[..., 0, :], drive[..., 1, :])
        return drive

    def step(self, x_proj: torch.Tensor, state: torch.Tensor):
        h = at_least_float32(state).reshape(state.shape[0], self.channels, *self.lattice)
        recurrent = apply_spectrum(self.recurrent_spectrum, h, onesided=not self.complex_state)
        z = recurrent.reshape(state.shape) + x_proj
        h = magnasco(z) if self.activation is None else self.activation(z)
        out = torch.cat([h.real, h.imag], dim=-1) if self.complex_state else h
        return out, h

    def fused_forward(self, x: torch.Tensor, state: torch.Tensor):
        """With engine graph, the step loop replayed from CUDA graphs (`graphed_sequence`); else None."""
        return graphed_sequence(self, x, state) if self.engine == "graph" else None

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, lattice={self.lattice}, channels={self.channels}, "
            f"complex_state={self.complex_state}, stencil={self.stencil}, nonlinearity={self.nonlinearity!r}, "
            f"input_map={self.input_map!r}, constrained={self.constrained}"
        )


@register("conv_rnn", "convolutional tanh RNN with an unconstrained kernel (the conv_unitary comparison)")
class ConvRNNCell(ConvUnitaryCell):
    """`ConvUnitaryCell` with ``constrained=False`` and ``nonlinearity="tanh"`` by default."""

    default_nonlinearity = ("tanh", "magnasco")
    default_constrained = False
