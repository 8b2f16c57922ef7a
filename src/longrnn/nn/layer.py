"""`RecurrentLayer`: any longrnn cell as a multi-layer, optionally bidirectional layer with the constructor,
the forward signature, the shapes and the ``state_dict`` names of `torch.nn.RNN` / `torch.nn.LSTM`.

    layer = LSTM(input_size, hidden_size, num_layers=2, batch_first=True, gate="fast")
    output, (h_n, c_n) = layer(x)             # x: (batch, time, input) since batch_first
    output, h_n = GRU(10, 20)(x)              # x: (time, batch, input), torch's default layout

Shapes, as `torch.nn.LSTM` documents them (D = 2 if bidirectional else 1, L = num_layers):

    input    (T, B, I), or (B, T, I) with batch_first, or (T, I) unbatched, or a PackedSequence
    hx       (D·L, B, H) or (D·L, H) unbatched; the LSTM takes a pair (h_0, c_0); default: the cell's
             own initial state (zeros, or the PLRNN's learned z0)
    output   (T, B, D·O) like the input's layout (a PackedSequence for packed input), O the cell's output
             size (H, or 2H for a complex conv_unitary state laid out as [real; imaginary])
    h_n      (D·L, B, H), layer-major: index 2·l + d for layer l and direction d (d = 1: reverse)

With packed input every sequence's final state is taken at its own last step (the reverse direction's
at its first), the packed output has the input's batch sizes and order, and the time loop runs on
the padded batch with each sequence's state held fixed after its end. Dropout acts on the outputs of
every layer except the last, in training mode only, as in torch.

Parameters live in per-layer cells (``cells[D·l + d]``); ``state_dict`` and ``load_state_dict`` use
torch's names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...: a parameter ``NAME`` of the cell for layer
l, direction d is ``NAME_l{l}`` or ``NAME_l{l}_reverse``), so a `torch.nn.LSTM`'s weights load into
`longrnn.nn.LSTM` unchanged, and ``layer.weight_ih_l0`` reads a parameter as in torch.

Bad input (wrong rank, feature size, state shape, batch size, dtype or device) is a `ValueError`
(`longrnn.errors.UsageError`) naming the argument, the expected and the given shape.
"""

from __future__ import annotations

import re
import warnings

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from longrnn.cells import Cell, State, cell_options, make_cell
from longrnn.cells.base import allowed_dtypes, in_dtype
from longrnn.cells.double import DoubleCell
from longrnn.errors import UsageError, check_bool, check_positive
from longrnn.models import Recurrent

TORCH_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_]+?)_l(?P<layer>\d+)(?P<reverse>_reverse)?(?P<rest>\..*)?$")


class RecurrentLayer(nn.Module):
    """Stacked cells of one kind over a sequence, with `torch.nn.RNN`'s constructor and forward.

    Subclasses set ``cell_name`` (a `longrnn.cells` name); `cell_name_for` may pick it from the options.

    Args:
        input_size: features of the input, I.
        hidden_size: width of each layer's state, H (a lattice cell takes it from ``lattice``).
        num_layers: stacked layers, L >= 1.
        bias: the cells' bias terms; ``False`` only for cells that can go without (RNN).
        batch_first: input and output as (B, T, ·) instead of (T, B, ·); states keep (D·L, B, H).
        dropout: dropout probability on the outputs of every layer but the last, in [0, 1).
        bidirectional: a second cell per layer reads the sequence backwards; outputs concatenated.
        device, dtype: where and in what the parameters are made (as ``torch.nn`` modules take them).
        double: each layer is two cells of width H/2 on the same input, concatenated (the warm-up paper's
            double layer, `longrnn.cells.double.DoubleCell`).
        **options: the cell's own options (``gate``, ``forget_init``, ``lattice``, ...; see
            ``longrnn list cells`` and the cell's docstring).

    Raises:
        ValueError (`longrnn.errors.UsageError`): a size, probability or option out of its range, or an
            option the cell does not take.
    """

    cell_name: str = ""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, double: bool = False, **options):
        super().__init__()
        check_positive("input_size", input_size)
        check_positive("hidden_size", hidden_size)
        check_positive("num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise UsageError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        self.batch_first = check_bool("batch_first", batch_first)
        self.bidirectional = check_bool("bidirectional", bidirectional)
        self.bias = check_bool("bias", bias)
        self.double_layers = check_bool("double", double)  # not self.double: that is nn.Module.double()
        if double and hidden_size % 2:
            raise UsageError(f"a double layer splits hidden_size in two halves; it must be even, got {hidden_size}")
        self.input_size, self.num_layers, self.dropout = input_size, num_layers, float(dropout)
        self.options = dict(options)
        name = self.cell_name_for(options)
        if not bias and "bias" not in cell_options(name):
            raise UsageError(f"bias=False is not available for {type(self).__name__}: its cell {name!r} always "
                             "has biases (they carry the gate initialisations)")
        if "bias" in cell_options(name):
            options = {**options, "bias": bias}
        cells, size = [], input_size
        for _ in range(num_layers):
            for _ in range(self.directions):
                cells.append(self._make_cell(name, size, hidden_size, options))
            size = cells[-1].output_size * self.directions
        self.cells = nn.ModuleList(cells)
        self.hidden_size = cells[0].hidden_size  # a lattice cell's width comes from its lattice
        self.output_size = cells[0].output_size  # per direction
        self.to(device=device, dtype=dtype)
        self.register_state_dict_post_hook(_to_torch_names)
        self.register_load_state_dict_pre_hook(_from_torch_names)
        self.register_load_state_dict_post_hook(_report_torch_names)
        if dropout and num_layers == 1:
            warnings.warn(f"dropout={dropout} acts between layers, so with num_layers=1 it does nothing (as in "
                          "torch.nn.LSTM)", UserWarning, stacklevel=2)

    def cell_name_for(self, options: dict) -> str:
        """The registered cell this layer is made of (some layers choose by an option, e.g. RNN's init)."""
        return self.cell_name

    def _make_cell(self, name: str, input_size: int, hidden_size: int, options: dict) -> Cell:
        if not self.double_layers:
            return make_cell(name, input_size, hidden_size, **options)
        return DoubleCell(make_cell(name, input_size, hidden_size // 2, **options),
                          make_cell(name, input_size, hidden_size // 2, **options))

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """Each cell's parameters, one list per layer and direction (index D·l + d), as torch's ``all_weights``."""
        return [list(cell.parameters()) for cell in self.cells]

    def flatten_parameters(self) -> None:
        """Nothing to do (torch packs its weights for cuDNN here; longrnn's cells keep their own): kept so
        that code written for torch.nn.LSTM (e.g. under DataParallel) runs unchanged."""

    def reset_parameters(self) -> None:
        """Every cell's own initialisation again (``forget_init`` included); draws from torch's global RNG."""
        for cell in self.cells:
            if hasattr(cell, "reset_parameters"):
                cell.reset_parameters()

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        for key, default in (("num_layers", 1), ("batch_first", False), ("dropout", 0.0),
                             ("bidirectional", False), ("double", False), ("bias", True)):
            value = getattr(self, "double_layers" if key == "double" else key)
            if value != default:
                text += f", {key}={value}"
        return text + "".join(f", {k}={v!r}" for k, v in self.options.items())

    def _torch_named(self, name: str):
        """(cell, its attribute name) for a torch parameter name such as ``weight_hh_l1_reverse``, else None."""
        match = TORCH_NAME.match(name)
        cells = self.__dict__.get("_modules", {}).get("cells")
        if match is None or cells is None or match["rest"] or (match["reverse"] and not self.bidirectional):
            return None
        index = int(match["layer"]) * self.directions + bool(match["reverse"])
        return (cells[index], match["name"]) if index < len(cells) else None

    def __getattr__(self, name: str):
        """torch's parameter names read the cells' parameters: ``weight_ih_l0``, ``bias_hh_l1_reverse``."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            if (found := self._torch_named(name)) is not None and hasattr(found[0], found[1]):
                return getattr(*found)
            raise

    def __setattr__(self, name: str, value) -> None:
        """``layer.weight_hh_l0 = ...`` sets the cell's parameter (as torch.func.functional_call does)."""
        found = self._torch_named(name) if "_modules" in self.__dict__ else None
        if found is None or not hasattr(*found):
            super().__setattr__(name, value)
        elif isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter) and \
                found[1] in found[0]._parameters:  # a plain tensor in a parameter's place, as functional_call does
            found[0]._parameters[found[1]] = value
        else:
            setattr(*found, value)

    # --- forward ----------------------------------------------------------------------------------------
    def forward(self, input, hx=None):
        """``(output, h_n)`` (the LSTM: ``(output, (h_n, c_n))``); shapes in the module docstring.

        Raises:
            ValueError (`longrnn.errors.UsageError`): input or hx of the wrong rank, feature size, batch
                size, dtype or device.
        """
        packed = isinstance(input, PackedSequence)
        if packed:
            x, lengths = pad_packed_sequence(input, batch_first=True)  # the batch in the caller's order
            unbatched = False
        else:
            x, unbatched = self._check_input(input), input.dim() == 2
            x = x.unsqueeze(0) if unbatched else (x if self.batch_first else x.transpose(0, 1))
            lengths = None
        self._check_dtype_device("input", x)
        states = self._initial_states(hx, x, unbatched)
        h, finals = x, []
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:
                h = nn.functional.dropout(h, self.dropout, training=True)
            outputs = []
            for direction in range(self.directions):
                index = layer * self.directions + direction
                out, final = run_cell(self.cells[index], h, states[index], lengths, reverse=direction == 1)
                outputs.append(out)
                finals.append(final)
            h = torch.cat(outputs, -1) if len(outputs) > 1 else outputs[0]
            h = in_dtype(h, x)  # the next layer reads what a layer of this dtype gives
        h_n = self._final_states(finals, unbatched)
        h_n = tuple(in_dtype(s, x) for s in h_n) if isinstance(h_n, tuple) else in_dtype(h_n, x)
        if packed:
            return _repack(h, lengths, input), h_n
        if unbatched:
            return h.squeeze(0), h_n
        return (h if self.batch_first else h.transpose(0, 1)), h_n

    # --- checks at the boundary ---------------------------------------------------------------------------
    def _layout(self) -> str:
        return "(batch, time, input_size)" if self.batch_first else "(time, batch, input_size)"

    def _check_input(self, input) -> torch.Tensor:
        if not isinstance(input, torch.Tensor):
            raise UsageError(f"input must be a tensor or a PackedSequence, got {type(input).__name__}")
        if input.dim() not in (2, 3):
            raise UsageError(f"input must be 3-D {self._layout()} or 2-D (time, input_size) unbatched, got shape "
                             f"{tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise UsageError(f"input has {input.shape[-1]} features in its last axis, expected input_size = "
                             f"{self.input_size} (shape {tuple(input.shape)})")
        time_axis = 0 if input.dim() == 2 or not self.batch_first else 1
        if input.shape[time_axis] == 0:
            raise UsageError(f"input has no time steps (shape {tuple(input.shape)})")
        return input

    def _check_dtype_device(self, name: str, tensor: torch.Tensor) -> None:
        weight = next(self.parameters())
        if tensor.device != weight.device:
            raise UsageError(f"{name} is on {tensor.device}, the layer's parameters on {weight.device}; move one "
                             "of them (.to(device))")
        if tensor.dtype not in allowed_dtypes(weight, tensor.device):
            raise UsageError(f"{name} is {tensor.dtype}, the layer's parameters {weight.dtype}; convert one of them "
                             f"(e.g. input.to({weight.dtype}) or layer.to({tensor.dtype}))")

    def _state_names(self) -> tuple[str, ...]:
        return ("hx",)

    def _initial_states(self, hx, x: torch.Tensor, unbatched: bool) -> list[State]:
        """One state per cell (index D·l + d), from ``hx`` or the cells' own initial states."""
        batch = x.shape[0]
        if hx is None:
            return [cell.init_state(batch, device=x.device, dtype=x.dtype) for cell in self.cells]
        names = self._state_names()
        parts = hx if len(names) > 1 else (hx,)
        if len(names) > 1 and (not isinstance(hx, (tuple, list)) or len(hx) != len(names)):
            raise UsageError(f"hx must be a pair ({', '.join(names)}), got {type(hx).__name__}")
        checked = []
        for name, part in zip(names, parts):
            checked.append(self._check_state(name, part, batch, unbatched))
        per_cell = [tuple(part[i] for part in checked) for i in range(len(self.cells))]
        return [p if len(p) > 1 else p[0] for p in per_cell]

    def _check_state(self, name: str, state, batch: int, unbatched: bool) -> torch.Tensor:
        width = self.cells[0].init_state(1, device="meta")
        width = (width[0] if isinstance(width, tuple) else width).shape[-1]
        expected = ((self.num_layers * self.directions, width) if unbatched
                    else (self.num_layers * self.directions, batch, width))
        if not isinstance(state, torch.Tensor) or tuple(state.shape) != expected:
            given = tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
            layout = "(num_layers * directions, hidden_size)" if unbatched else \
                "(num_layers * directions, batch, hidden_size)"
            raise UsageError(f"{name} must have shape {layout} = {expected}, got {given}")
        self._check_dtype_device(name, state if not state.is_complex() else state.real)
        return state.unsqueeze(1) if unbatched else state

    def _final_states(self, finals: list[State], unbatched: bool):
        stacked = [torch.stack(parts) for parts in zip(*finals)] if isinstance(finals[0], tuple) \
            else [torch.stack(finals)]
        if unbatched:
            stacked = [s.squeeze(1) for s in stacked]
        return tuple(stacked) if len(stacked) > 1 else stacked[0]


# --- the time loop ------------------------------------------------------------------------------------------
def run_cell(cell: Cell, x: torch.Tensor, state: State, lengths: torch.Tensor | None, reverse: bool):
    """One cell over a (B, T, I) batch by `longrnn.models.Recurrent` (the cell's fused kernel when there is
    no padding; with ``lengths`` each sequence's state stays as it was after its own last step): outputs
    (B, T, O) and the final state. ``lengths`` (B,) holds each sequence's length (None: all T); a reverse
    pass reads each sequence backwards from its own end."""
    full = lengths is None or bool((lengths == x.shape[1]).all())
    if reverse:
        x = x.flip(1) if full else reverse_padded(x, lengths)
    out, final = Recurrent(cell)(x, state, lengths=lengths)
    if reverse:
        out = out.flip(1) if full else reverse_padded(out, lengths)
    return out, final


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each (B, T, ·) sequence reversed within its own length; the padding after it stays in place."""
    time = torch.arange(x.shape[1])
    lengths = lengths.cpu()
    index = torch.where(time < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - time, time)  # (B, T)
    index = index.to(x.device).unsqueeze(-1).expand_as(x)
    return x.gather(1, index)


def _repack(out: torch.Tensor, lengths: torch.Tensor, like: PackedSequence) -> PackedSequence:
    """(B, T, ·) outputs in the caller's batch order, packed like the input ``like`` (same batch sizes
    and order)."""
    if like.sorted_indices is not None:
        out, lengths = out.index_select(0, like.sorted_indices), lengths.index_select(0, like.sorted_indices.cpu())
    data = pack_padded_sequence(out, lengths, batch_first=True, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


# --- torch's state_dict names -----------------------------------------------------------------------------
def _to_torch_names(module: RecurrentLayer, state_dict: dict, prefix: str, local_metadata) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + "cells.")]:
        state_dict[prefix + _torch_name(module, key[len(prefix):])] = state_dict.pop(key)


def _report_torch_names(module: RecurrentLayer, incompatible) -> None:
    """Missing and unexpected keys of ``load_state_dict`` under the torch names the caller used."""
    for keys in (incompatible.missing_keys, incompatible.unexpected_keys):
        keys[:] = [_torch_name(module, key) for key in keys]


def _torch_name(module: RecurrentLayer, key: str) -> str:
    head, found, tail = key.partition("cells.")
    if not found:
        return key
    index, _, name = tail.partition(".")
    if not index.isdigit():
        return key
    layer, direction = divmod(int(index), module.directions)
    first, dot, rest = name.partition(".")
    return f"{head}{first}_l{layer}{'_reverse' if direction else ''}{dot}{rest}"


def _from_torch_names(module: RecurrentLayer, state_dict: dict, prefix: str, *args) -> None:
    for key in [k for k in state_dict if k.startswith(prefix)]:
        match = TORCH_NAME.match(key[len(prefix):])
        if match is None:
            continue
        index = int(match["layer"]) * module.directions + bool(match["reverse"])
        state_dict[f"{prefix}cells.{index}.{match['name']}{match['rest'] or ''}"] = state_dict.pop(key)
