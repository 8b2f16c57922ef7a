"""The double-layer cell of the warm-up paper (Lambrechts et al., Neural Networks 2023, arXiv 2106.01001,
"double-layer architecture initialised with a partial warm-up"; the "parallel recurrent network
structure" of its v1):

    h_t = [h¹_t ; h²_t],   h¹_t = cell₁(x_t, h¹_{t-1}),   h²_t = cell₂(x_t, h²_{t-1})

two independent cells of half the width read the same input and their outputs and states are
concatenated. With a partial warm-up (`longrnn.methods.warmup.warm_up`) only ``first`` is warmed (made
multistable, for long memory) and ``second`` keeps its standard initialisation (for precision).

`DoubleCell` is itself a Cell, so `Recurrent`, `SequenceModel(double=True)`, the diagnostics and the
trainer use it unchanged. Its state has the structure of the inner cells' state (a tensor, or a tuple
such as the LSTM's (h, c)) with each tensor the concatenation of the two halves along the last axis;
`split_state` takes it apart again.
"""

from __future__ import annotations

import torch

from longrnn.cells.base import Cell, State, map_state
from longrnn.errors import UsageError


def concat_states(first: State, second: State) -> State:
    """Two half-width states as one: (batch, a) and (batch, b) -> (batch, a + b), per tensor of a tuple."""
    if isinstance(first, tuple):
        return tuple(torch.cat(pair, -1) for pair in zip(first, second, strict=True))
    return torch.cat([first, second], -1)


def _tensors(state: State) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


class DoubleCell(Cell):
    """Two cells, ``first`` and ``second``, on the same input, outputs and states concatenated."""

    def __init__(self, first: Cell, second: Cell):
        super().__init__()
        if first.input_size != second.input_size:
            raise UsageError(f"the two cells of a double layer need one input size, got {first.input_size} "
                             f"and {second.input_size}")
        for cell in (first, second):  # the halves of a state are cut at the first cell's hidden size
            widths = {s.shape[-1] for s in _tensors(cell.init_state(1))}
            if widths != {cell.hidden_size}:
                name = getattr(cell, "name", type(cell).__name__)
                raise UsageError(f"a double layer needs every state tensor of its cells hidden_size wide; {name}'s "
                                 f"are {sorted(widths)} wide for hidden size {cell.hidden_size}")
        self.first, self.second = first, second
        self.input_size = first.input_size
        self.hidden_size = first.hidden_size + second.hidden_size
        self.output_size = first.output_size + second.output_size
        with torch.no_grad():  # width of the first cell's projected input, to split the concatenation
            probe = torch.zeros(1, first.input_size, dtype=next(first.parameters()).dtype)
            self.first_projection_size = first.project_input(probe).shape[-1]
        if hasattr(first, "forget_gate_values") and hasattr(second, "forget_gate_values"):
            self.forget_gate_values = self.both_forget_gate_values  # the saturation diagnostics look for it

    def split_state(self, state: State) -> tuple[State, State]:
        """(state of ``first``, state of ``second``) from the concatenated state."""
        width = self.first.hidden_size
        return map_state(lambda s: s[..., :width], state), map_state(lambda s: s[..., width:], state)

    def init_state(self, batch_size: int, device=None, dtype=None) -> State:
        return concat_states(self.first.init_state(batch_size, device, dtype),
                             self.second.init_state(batch_size, device, dtype))

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.first.project_input(x), self.second.project_input(x)], -1)

    def split_projection(self, x_proj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x_proj[..., : self.first_projection_size], x_proj[..., self.first_projection_size :]

    def step(self, x_proj: torch.Tensor, state: State):
        (x1, x2), (s1, s2) = self.split_projection(x_proj), self.split_state(state)
        h1, s1 = self.first.step(x1, s1)
        h2, s2 = self.second.step(x2, s2)
        return torch.cat([h1, h2], -1), concat_states(s1, s2)

    def fused_forward(self, x: torch.Tensor, state: State):
        """Both cells' whole-sequence kernels, when both have one; else None (the step loop runs)."""
        s1, s2 = self.split_state(state)
        one = self.first.fused_forward(x, s1)
        if one is None:
            return None
        two = self.second.fused_forward(x, s2)
        if two is None:
            return None
        return torch.cat([one[0], two[0]], -1), concat_states(one[1], two[1])

    def both_forget_gate_values(self, x_proj: torch.Tensor, prev_state: State) -> torch.Tensor:
        """Both halves' keep-gate values, concatenated (``forget_gate_values`` when both cells have one)."""
        (x1, x2), (s1, s2) = self.split_projection(x_proj), self.split_state(prev_state)
        return torch.cat([self.first.forget_gate_values(x1, s1), self.second.forget_gate_values(x2, s2)], -1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, two halves of {self.first.hidden_size}"
