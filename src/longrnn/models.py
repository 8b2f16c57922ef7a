"""Sequence models: the time loop (`Recurrent`) and a stack of layers with a readout (`SequenceModel`).

`Recurrent` runs one cell over a sequence. It computes the input projection for all steps at once,
then loops with ``unbind(1)`` — indexing ``x[:, t]`` inside a differentiated loop would make backward
O(T²). Parametrized weights (e.g. an orthogonal recurrent matrix) are computed once per call, not once
per step, through ``torch.nn.utils.parametrize.cached()``. When the cell offers a fused whole-sequence
kernel and per-step states are not requested, that kernel is used instead (same outputs and gradients,
tested in tests/test_cells.py).

`SequenceModel` stacks layers (optional dropout between them) and reads out with a linear head on the
last step (``readout="last"``: y is (batch, output_size)) or on every step (``readout="all"``: y is
(batch, time, output_size)). With ``double=True`` every layer is a `longrnn.cells.double.DoubleCell`:
two cells of half the width on the same input, outputs concatenated (the warm-up paper's double layer).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from longrnn.cells import Cell, State, make_cell, stack_states
from longrnn.cells.double import DoubleCell
from longrnn.errors import UsageError, check_positive

READOUTS = ("last", "all")


class Recurrent(nn.Module):
    """Run ``cell`` over (batch, time, input_size); returns outputs (batch, time, output_size)."""

    def __init__(self, cell: Cell, fused: bool = True):
        super().__init__()
        self.cell = cell
        self.fused = fused

    def forward(self, x: torch.Tensor, state: State | None = None, return_states: bool = False,
                lengths: torch.Tensor | None = None):
        """Returns ``(outputs, final_state)``, plus the per-step states when ``return_states``.

        Per-step states have the structure of the cell's state with a time axis at dim 1. ``lengths``
        (batch,) gives each sequence's own length (0 to T; None: all T): after it a sequence's state
        stays as it was at its last step, its outputs are zeros, and the final state is the one at its
        own last step, so padding a batch changes no sequence's outputs, state or gradients.
        """
        if state is None:
            state = self.cell.init_state(x.shape[0], device=x.device, dtype=x.dtype)
        if lengths is not None and bool((lengths >= x.shape[1]).all()):
            lengths = None  # no padding: the plain (or fused) loop
        if self.fused and not return_states and lengths is None:
            fused = self.cell.fused_forward(x, state)
            if fused is not None:
                return fused
        alive = [None] * x.shape[1] if lengths is None else \
            (torch.arange(x.shape[1]) < lengths.cpu().unsqueeze(1)).to(x.device).unbind(1)
        with parametrize.cached():
            outputs, states = [], []
            for xp_t, keep in zip(self.cell.project_input(x).unbind(1), alive):  # unbind: backward stays O(T)
                h, new = self.cell.step(xp_t, state)
                if keep is not None:
                    new = keep_where(keep, new, state)
                    h = h * keep.view(-1, *([1] * (h.dim() - 1))).to(h.dtype)
                state = new
                outputs.append(h)
                if return_states:
                    states.append(state)
        outputs = torch.stack(outputs, 1)
        if return_states:
            return outputs, state, stack_states(states)
        return outputs, state


def keep_where(keep: torch.Tensor, new: State, old: State) -> State:
    """``new`` where ``keep`` (batch,) is true, ``old`` elsewhere, for every tensor of a state."""
    if isinstance(new, tuple):
        return tuple(keep_where(keep, n, o) for n, o in zip(new, old))
    return torch.where(keep.view(-1, *([1] * (new.dim() - 1))), new, old)


def run_layers(layers, dropout, x: torch.Tensor, state: list[State] | None = None, return_states: bool = False,
               lengths: torch.Tensor | None = None):
    """``x`` (B, T, I) through each `Recurrent` of ``layers`` in turn from its state (None: the cell's
    initial one), ``dropout`` (a callable) between layers: ``(top outputs, final states)``, plus each
    layer's per-step states when ``return_states``. ``lengths`` as `Recurrent` takes it."""
    state = state if state is not None else [None] * len(layers)
    finals, all_states, h = [], [], x
    for i, (layer, s) in enumerate(zip(layers, state)):
        if i:
            h = dropout(h)
        out = layer(h, s, return_states=return_states, lengths=lengths)
        h = out[0]
        finals.append(out[1])
        if return_states:
            all_states.append(out[2])
    return (h, finals, all_states) if return_states else (h, finals)


class SequenceModel(nn.Module):
    """Stacked recurrent layers of one cell type and a linear readout.

    ``SequenceModel("lstm", input_size=2, hidden_size=128, output_size=1)`` builds a one-layer LSTM
    reading out on the last step. Cell options (e.g. ``nonlinearity="tanh"``) pass through to
    `longrnn.cells.make_cell`. ``readout_bias=False`` drops the readout's bias (y = B h, as the rPLRNN
    benchmark code reads out).
    """

    def __init__(
        self,
        cell_name: str,
        input_size: int,
        hidden_size: int,
        output_size: int,
        num_layers: int = 1,
        readout: str = "last",
        dropout: float = 0.0,
        fused: bool = True,
        double: bool = False,
        readout_bias: bool = True,
        **cell_options,
    ):
        super().__init__()
        check_positive("num_layers", num_layers)
        if double and hidden_size % 2:
            raise UsageError(f"a double layer splits hidden_size in two halves; it must be even, got {hidden_size}")
        check_positive("output_size", output_size)
        if readout not in READOUTS:
            raise UsageError(f"unknown readout {readout!r}; allowed: {', '.join(READOUTS)}")
        if not 0.0 <= dropout < 1.0:
            raise UsageError(f"dropout must be in [0, 1), got {dropout!r}")
        layers = []
        size = input_size
        for _ in range(num_layers):
            if double:
                cell = DoubleCell(make_cell(cell_name, size, hidden_size // 2, **cell_options),
                                  make_cell(cell_name, size, hidden_size // 2, **cell_options))
            else:
                cell = make_cell(cell_name, size, hidden_size, **cell_options)
            layers.append(Recurrent(cell, fused=fused))
            size = cell.output_size
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(size, output_size, bias=readout_bias)
        self.readout = readout
        self.cell_name = cell_name
        self.double_layers = double
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size

    @property
    def cells(self) -> list[Cell]:
        """The cell of each layer, bottom first."""
        return [layer.cell for layer in self.layers]

    def init_state(self, batch_size: int, device=None, dtype=None) -> list[State]:
        """Each layer's `Cell.init_state`, bottom first (the ``state`` that `run` takes and returns)."""
        return [cell.init_state(batch_size, device=device, dtype=dtype) for cell in self.cells]

    def run(self, x, state: list[State] | None = None, return_states: bool = False,
            lengths: torch.Tensor | None = None):
        """Returns ``(y, final_state)``, plus a list with each layer's per-step states when asked.

        ``x`` is (batch, time, input_size), or a `torch.nn.utils.rnn.PackedSequence` of such sequences
        (batch_first or not), which is the padded batch with its ``lengths``. With ``lengths`` (batch,)
        each sequence ends at its own length (see `Recurrent`): readout "last" reads each one at its own
        last step; readout "all" gives zeros after it. A sequence of length 0 is a UsageError.
        """
        if isinstance(x, PackedSequence):
            if lengths is not None:
                raise UsageError("a PackedSequence holds its own lengths; give lengths only with a tensor")
            x, lengths = pad_packed_sequence(x, batch_first=True)
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.input_size:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise UsageError(f"expected input of shape (batch, time, {self.input_size}) or a PackedSequence, "
                             f"got {shape}")
        if x.shape[1] == 0:
            raise UsageError("expected at least one time step, got an empty sequence")
        if lengths is not None:
            lengths = check_lengths(lengths, x)
        h, *rest = run_layers(self.layers, self.dropout, x, state, return_states, lengths)
        if self.readout == "all":
            y = self.head(h)
            return (y if lengths is None else zero_after_end(y, lengths), *rest)
        last = h[:, -1] if lengths is None else h[torch.arange(h.shape[0], device=h.device), lengths.to(h.device) - 1]
        return (self.head(last), *rest)

    def forward(self, x, state: list[State] | None = None, lengths: torch.Tensor | None = None):
        """``(batch, time, input_size)`` or a PackedSequence ``-> (y, final_state)``; final_state has one
        entry per layer, each sequence's at its own last step. ``lengths`` as in `run`."""
        return self.run(x, state, lengths=lengths)


def zero_after_end(y: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Per-step outputs ``y`` (batch, T, ...) with zeros after each sequence's end (``lengths`` (batch,)):
    what a padded batch holds there."""
    alive = torch.arange(y.shape[1]) < lengths.cpu().unsqueeze(1)
    return y * alive.to(y.device, y.dtype).view(*alive.shape, *([1] * (y.dim() - 2)))


def check_lengths(lengths, x: torch.Tensor) -> torch.Tensor:
    """``lengths`` as a (batch,) long tensor on the CPU, each in 1..T for the (batch, T, ·) input ``x``;
    anything else is a UsageError naming the bad length."""
    lengths = torch.as_tensor(lengths).cpu()
    if lengths.shape != (x.shape[0],) or lengths.is_floating_point() or lengths.is_complex():
        raise UsageError(f"lengths must be {x.shape[0]} whole numbers, one per sequence, got shape "
                         f"{tuple(lengths.shape)} of {lengths.dtype}")
    bad = ((lengths < 1) | (lengths > x.shape[1])).nonzero()
    if len(bad):
        i = int(bad[0])
        raise UsageError(f"sequence {i} has length {int(lengths[i])}; lengths must be in 1..{x.shape[1]}")
    return lengths.long()
