"""One step of every longrnn cell with the conventions of `torch.nn.LSTMCell` / `torch.nn.RNNCell`:

    cell = longrnn.nn.LSTMCell(10, 20, gate="fast", forget_init="chrono:1000")
    h, c = cell(x)              # x: (batch, 10) or (10,) unbatched; hx defaults to the initial state
    h, c = cell(x, (h, c))
    h = longrnn.nn.NBRCCell(10, 20)(x, h)

Each class is the registered cell of `longrnn.cells` (same parameters, names and equations, so a
`torch.nn.LSTMCell`'s ``state_dict`` loads into `LSTMCell`) with torch's constructor
``(input_size, hidden_size, bias=True, device=None, dtype=None, **options)`` and forward
``hx' = cell(input, hx=None)``: the new state (the LSTM's ``(h', c')``), shaped (batch, H) or (H,).
A cell whose output differs from its state (the PLRNN with ``output="relu"``, a complex conv_unitary
state) returns the state, which is what goes back in; ``cell.step`` gives both.
"""

from __future__ import annotations

import inspect

import torch

from longrnn.cells.base import allowed_dtypes, in_dtype, map_state
from longrnn.cells.bistable import BRCCell as _BRC
from longrnn.cells.bistable import NBRCCell as _NBRC
from longrnn.cells.conv_unitary import ConvUnitaryCell as _ConvUnitary
from longrnn.cells.gated import GRUCell as _GRU
from longrnn.cells.gated import LSTMCell as _LSTM
from longrnn.cells.mgu import MGUCell as _MGU
from longrnn.cells.orthogonal import OrthogonalRNNCell as _Orthogonal
from longrnn.cells.plrnn import PLRNNCell as _PLRNN
from longrnn.cells.simple import ElmanRNNCell as _Elman
from longrnn.cells.simple import IRNNCell as _IRNN
from longrnn.errors import UsageError, check_bool, check_choice, check_positive


class TorchCellAPI:
    """Mixin before a `longrnn.cells.Cell` class: torch's cell constructor and forward (see the module).

    Raises:
        ValueError (`longrnn.errors.UsageError`): at construction, a size or option out of range or
            ``bias=False`` for a cell that always has biases; in forward, an input or state of the wrong
            rank, feature size, batch size, dtype or device.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, **options):
        check_positive("input_size", input_size)
        check_positive("hidden_size", hidden_size)
        check_bool("bias", bias)
        takes_bias = "bias" in inspect.signature(super().__init__).parameters
        if not bias and not takes_bias:
            raise UsageError(f"bias=False is not available for {type(self).__name__}: it always has biases")
        super().__init__(input_size, hidden_size, **({"bias": bias} if takes_bias else {}), **options)
        self.to(device=device, dtype=dtype)

    def forward(self, input: torch.Tensor, hx=None):
        """``hx' = cell(input, hx)``: input (batch, input_size) or (input_size,); hx as returned (default:
        the initial state). Returns the new state: (batch, H) or (H,); the LSTM a pair of them."""
        if not isinstance(input, torch.Tensor) or input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            given = tuple(input.shape) if isinstance(input, torch.Tensor) else type(input).__name__
            raise UsageError(f"input must have shape (batch, {self.input_size}) or ({self.input_size},) unbatched, "
                             f"got {given}")
        unbatched = input.dim() == 1
        x = input.unsqueeze(0) if unbatched else input
        self._check_dtype_device("input", x)
        initial = self.init_state(x.shape[0], device=x.device, dtype=x.dtype)
        state = initial if hx is None else self._check_hx(hx, initial, unbatched)
        _, state = self.step(self.project_input(x), state)
        state = map_state(lambda s: in_dtype(s, x), state)  # the gates' float32 state in the input's dtype
        if unbatched:
            state = map_state(lambda s: s.squeeze(0), state)
        return state

    def _check_dtype_device(self, name: str, tensor: torch.Tensor) -> None:
        weight = next(self.parameters())
        real = tensor.real if tensor.is_complex() else tensor
        if tensor.device != weight.device or real.dtype not in allowed_dtypes(weight, tensor.device):
            raise UsageError(f"{name} is {tensor.dtype} on {tensor.device}, the cell's parameters {weight.dtype} on "
                             f"{weight.device}; convert one of them (.to(...))")

    def _check_hx(self, hx, initial, unbatched: bool):
        pair = isinstance(initial, tuple)
        parts = hx if pair else (hx,)
        if pair and (not isinstance(hx, (tuple, list)) or len(hx) != len(initial)):
            raise UsageError(f"hx must be a pair (h, c) for {type(self).__name__}, got {type(hx).__name__}")
        checked = []
        for name, part, like in zip(("h", "c") if pair else ("hx",), parts, initial if pair else (initial,)):
            expected = tuple(like.shape[1:]) if unbatched else tuple(like.shape)
            if not isinstance(part, torch.Tensor) or tuple(part.shape) != expected:
                given = tuple(part.shape) if isinstance(part, torch.Tensor) else type(part).__name__
                raise UsageError(f"{name} must have shape {expected} (batch, hidden_size), got {given}")
            self._check_dtype_device(name, part)
            checked.append(part.unsqueeze(0) if unbatched else part)
        return tuple(checked) if pair else checked[0]


class LSTMCell(TorchCellAPI, _LSTM):
    """`torch.nn.LSTMCell` with a choice of forget gate and its initialisation (`longrnn.cells.gated`):
    ``gate`` (sigmoid | fast | softsign | refine), ``forget_init`` (default | constant:V | chrono:T_MAX |
    uniform), ``gate_parity``, ``chrono_input``, ``engine``, ``weight_init`` (default | xavier_orthogonal).
    Returns ``(h', c')``, each (batch, H)."""


class GRUCell(TorchCellAPI, _GRU):
    """`torch.nn.GRUCell` with a choice of update gate and its initialisation (`longrnn.cells.gated`):
    ``gate``, ``forget_init``, ``gate_parity``, ``weight_init`` (default | xavier_orthogonal: the warm-up
    paper's official GRU init). Returns h' (batch, H)."""


class RNNCell(TorchCellAPI, _Elman):
    """`torch.nn.RNNCell`: h' = φ(W_ih x + b_ih + W_hh h + b_hh), ``nonlinearity`` tanh | relu; ``init=
    "identity"`` gives the IRNN's initialisation (Le, Jaitly & Hinton 2015: W_hh = init_scale·I, zero
    biases, W_ih ~ N(0, 0.001²); `longrnn.cells.simple.IRNNCell`)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None, init: str = "default", init_scale: float = 1.0):
        self.init = check_choice("init", init, ("default", "identity"))
        self.init_scale, self.input_std = float(init_scale), _IRNN.input_std
        super().__init__(input_size, hidden_size, bias, device, dtype, nonlinearity=nonlinearity)

    def reset_parameters(self) -> None:
        """torch's uniform(-1/√H, 1/√H), or the IRNN's identity initialisation with ``init="identity"``."""
        (_IRNN if self.init == "identity" else _Elman).reset_parameters(self)


class BRCCell(TorchCellAPI, _BRC):
    """The bistable recurrent cell (Vecoven et al. 2021, `longrnn.cells.bistable`). Returns h' (batch, H)."""


class NBRCCell(TorchCellAPI, _NBRC):
    """The neuromodulated bistable recurrent cell (Vecoven et al. 2021). Returns h' (batch, H)."""


class MGUCell(TorchCellAPI, _MGU):
    """The minimal gated unit (Zhou et al. 2016, `longrnn.cells.mgu`). Returns h' (batch, H)."""


class PLRNNCell(TorchCellAPI, _PLRNN):
    """The piecewise-linear RNN z' = A z + W relu(z) + h + C s (Koppe et al. 2019; `longrnn.cells.plrnn`):
    options ``init``, ``integrators``, ``output``, ``initial_state``. Returns z' (batch, M)."""


class OrthogonalRNNCell(TorchCellAPI, _Orthogonal):
    """An RNN with an orthogonal recurrent matrix (`longrnn.cells.orthogonal`): options ``nonlinearity``,
    ``orthogonal_map``. Returns h' (batch, H)."""


class ConvUnitaryRNNCell(TorchCellAPI, _ConvUnitary):
    """The convolutional orthogonal/unitary RNN, U = exp_⊛(A) by FFT (Magnasco 2023;
    `longrnn.cells.conv_unitary`): options ``lattice``, ``channels``, ``complex_state``, ``stencil``, ...
    With a lattice, hidden_size must be channels × its sites. Returns h' (batch, H), complex for
    ``complex_state=True``."""
