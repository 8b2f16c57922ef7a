"""MemUP's model: the memory g_θ (a `SequenceModel`'s recurrent layers) and the predictor f_φ(y_k | m_t, x_k).

Sorokin et al., "Explain My Surprise", NeurIPS 2022 (arXiv 2207.13649); official code ``griver/memup``
(its ``MemUPPredictor`` and copy-task ``SLRecPredictor``). `MemUPModel.forward` is the evaluation path of
the official ``MemUPEvalSampler``: predict y_k from m_k at every step, chunk by chunk. The training step
that uses these is `longrnn.training.memup.MemUP`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from longrnn.errors import UsageError, unknown
from longrnn.models import zero_after_end
from longrnn.training.memup_batch import chunk_windows, input_windows

PREDICTORS = {
    "mlp": "MLP on [m_t, the last context_len inputs up to k]",
    "local_rnn": "MLP on [m_t, a GRU over the last context_len inputs up to k] (local recurrent context)",
}


# --- the memory (its inputs' windows: input_windows, chunk_windows in training/memup_batch.py) -------
def memory_outputs(memory, x: torch.Tensor, state=None):
    """The top recurrent layer's outputs m (batch, time, hidden) of a `SequenceModel`, and its final states."""
    state = state if state is not None else [None] * len(memory.layers)
    finals, h = [], x
    for i, (layer, s) in enumerate(zip(memory.layers, state)):
        if i > 0:
            h = memory.dropout(h)
        h, final = layer(h, s)
        finals.append(final)
    return h, finals


# --- predictors ----------------------------------------------------------------------------------
class MLPPredictor(nn.Module):
    """f_φ(y_k | m_t, x_{k-w+1..k}) = W_3 ReLU(W_2 ReLU(W_1 [m_t, ReLU(E vec(window_k))]))
    (official ``MemUPPredictor``)."""

    def __init__(self, memory_size: int, input_size: int, output_size: int, hidden: int = 256, context_len: int = 1):
        super().__init__()
        self.context_len = context_len
        self.encode = nn.Sequential(nn.Linear(input_size * context_len, hidden), nn.ReLU())
        self.head = nn.Sequential(
            nn.Linear(memory_size + hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, output_size),
        )

    def context(self, windows: torch.Tensor) -> torch.Tensor:
        return self.encode(windows.flatten(-2))

    def forward(self, m: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        """m (..., memory_size), windows (..., context_len, input_size) -> (..., output_size)."""
        return self.head(torch.cat([m, self.context(windows)], dim=-1))


class LocalRNNPredictor(MLPPredictor):
    """As `MLPPredictor`, but the window is read by a GRU (its last output is the context c_k).

    The official copy-task predictor (``SLRecPredictor``) keeps its own LSTM context over the events; here
    the context is local (a window of ``context_len`` steps from a zero state), so it cannot carry the
    long-term information that the memory has to learn.
    """

    def __init__(self, memory_size: int, input_size: int, output_size: int, hidden: int = 256, context_len: int = 1):
        super().__init__(memory_size, input_size, output_size, hidden, context_len)
        self.encode = nn.GRU(input_size, hidden, batch_first=True)

    def context(self, windows: torch.Tensor) -> torch.Tensor:
        lead = windows.shape[:-2]
        out, _ = self.encode(windows.reshape(-1, *windows.shape[-2:]))
        return out[:, -1].reshape(*lead, -1)


def make_predictor(name: str, memory_size: int, input_size: int, output_size: int, hidden: int, context_len: int):
    classes = {"mlp": MLPPredictor, "local_rnn": LocalRNNPredictor}
    if name not in classes:
        raise unknown("memup predictor", name, classes)
    return classes[name](memory_size, input_size, output_size, hidden, context_len)


# --- memory + predictor as one model --------------------------------------------------------------
class MemUPModel(nn.Module):
    """Memory (a `SequenceModel`'s recurrent layers) and predictor; ``forward`` is the evaluation path.

    ``forward(x) -> (y_pred, final_state)`` predicts y_k from m_k at every step, in the task's format
    ((batch, time, out) for readout "all", the last step for "last"), running the sequence in chunks of
    ``chunk_len`` steps.
    """

    def __init__(self, memory, predictor: MLPPredictor, chunk_len: int = 1000):
        super().__init__()
        self.memory = memory
        self.predictor = predictor
        self.chunk_len = chunk_len
        self.readout = getattr(memory, "readout", "all")

    @property
    def layers(self):  # the memory's recurrent layers (gate diagnostics read them)
        return self.memory.layers

    @property
    def cells(self):
        return self.memory.cells

    def step_predictions(self, x: torch.Tensor, state=None, last_only: bool = False):
        """ŷ_k = f(m_k, window_k) for every step (or the last one), chunk by chunk; returns (ŷ, state)."""
        windows = input_windows(x, self.predictor.context_len)
        outputs = []
        for start in range(0, x.shape[1], self.chunk_len):
            stop = min(start + self.chunk_len, x.shape[1])
            m, state = memory_outputs(self.memory, x[:, start:stop], state)
            if last_only and stop < x.shape[1]:
                continue
            w = windows[:, start:stop]
            outputs.append(self.predictor(m[:, -1:], w[:, -1:]) if last_only else self.predictor(m, w))
        return torch.cat(outputs, dim=1), state

    def forward_chunk(self, x: torch.Tensor, carry=None):
        """One chunk (batch, time, input_size) of longer sequences: ``(y, carry)`` with y as `forward`
        gives it for this chunk, and ``carry`` (None at the start) the memory's state and the last
        ``context_len - 1`` inputs, which the predictor's windows at the next chunk's first steps read."""
        return self.predict_chunk(x, carry, last_only=self.readout == "last")

    def predict_chunk(self, x: torch.Tensor, carry=None, last_only: bool = False):
        """ŷ_k = f(m_k, window_k) at every step of one chunk (or its last, (batch, output_size)), and the
        carry (memory state, last inputs) that the next chunk starts from (`forward_chunk`)."""
        context = self.predictor.context_len
        state, tail = carry if carry is not None else (None, x.new_zeros(x.shape[0], context - 1, x.shape[2]))
        windows, tail = chunk_windows(x, tail, context)
        m, state = memory_outputs(self.memory, x, state)
        y = self.predictor(m[:, -1], windows[:, -1]) if last_only else self.predictor(m, windows)
        return y, (state, tail)

    def forward(self, x: torch.Tensor | PackedSequence, state=None):
        """x (batch, time, input_size), or a PackedSequence of sequences of different lengths: then each
        sequence's prediction is read at its own last step (readout "last"), or zeros follow its end
        ("all"); the returned state is the one after the padded batch's last step."""
        lengths = None
        if isinstance(x, PackedSequence):
            x, lengths = pad_packed_sequence(x, batch_first=True)
        if x.dim() != 3 or x.shape[-1] != self.memory.input_size:
            raise UsageError(f"expected input of shape (batch, time, {self.memory.input_size}), got {tuple(x.shape)}")
        if lengths is not None:  # the memory is causal: steps after a sequence's end never reach its outputs
            y, state = self.step_predictions(x, state)
            if self.readout == "last":
                return y[torch.arange(len(y)), lengths.to(y.device) - 1], state
            return zero_after_end(y, lengths), state
        y, state = self.step_predictions(x, state, last_only=self.readout == "last")
        return (y[:, -1] if self.readout == "last" else y), state


def build_memup_model(memory, task, t) -> MemUPModel:
    """Wrap a `SequenceModel` (the memory) with the predictor the TrainConfig ``t`` names."""
    predictor = make_predictor(t.memup_predictor, memory.layers[-1].cell.output_size, task.input_size,
                               task.output_size, t.memup_hidden, t.memup_context_len)
    return MemUPModel(memory, predictor, chunk_len=t.memup_chunk_len)
