"""longrnn's cells as PyTorch layers: drop-in for `torch.nn.LSTM` / `GRU` / `RNN` and their cells, with
each method's options as keywords.

    import longrnn
    lstm = longrnn.nn.LSTM(32, 128, batch_first=True, gate="fast", forget_init="chrono:1000")
    output, (h_n, c_n) = lstm(x)

Layers (`layers.py`, built on `layer.RecurrentLayer`): LSTM, GRU, RNN, BRC, NBRC, MGU, PLRNN, OrthogonalRNN,
ConvUnitaryRNN. One-step cells (`cells.py`): the same names with ``Cell`` appended.
"""

from longrnn.nn.cells import (
    BRCCell,
    ConvUnitaryRNNCell,
    GRUCell,
    LSTMCell,
    MGUCell,
    NBRCCell,
    OrthogonalRNNCell,
    PLRNNCell,
    RNNCell,
)
from longrnn.nn.layer import RecurrentLayer
from longrnn.nn.layers import BRC, GRU, LSTM, MGU, NBRC, PLRNN, RNN, ConvUnitaryRNN, OrthogonalRNN

__all__ = [
    "BRC",
    "GRU",
    "LSTM",
    "MGU",
    "NBRC",
    "PLRNN",
    "RNN",
    "BRCCell",
    "ConvUnitaryRNN",
    "ConvUnitaryRNNCell",
    "GRUCell",
    "LSTMCell",
    "MGUCell",
    "NBRCCell",
    "OrthogonalRNN",
    "OrthogonalRNNCell",
    "PLRNNCell",
    "RNNCell",
    "RecurrentLayer",
]
