"""Every longrnn cell as a layer that drops in where `torch.nn.LSTM` / `GRU` / `RNN` is used.

    encoder = longrnn.nn.LSTM(32, 128, num_layers=2, batch_first=True, gate="fast", forget_init="chrono:1000")
    output, (h_n, c_n) = encoder(x)                 # exactly torch.nn.LSTM's shapes
    encoder = longrnn.nn.LSTM.from_torch(torch_lstm, gate="fast")   # keep a trained torch module's weights

Constructor, forward, shapes and ``state_dict`` names: `longrnn.nn.layer.RecurrentLayer`. Each layer's own
options are those of its cell (``longrnn list cells``; the cell classes' docstrings give the sources).
"""

from __future__ import annotations

from torch import nn

from longrnn.errors import UsageError, check_choice
from longrnn.nn.layer import RecurrentLayer


class _FromTorch:
    """``from_torch``: a `torch.nn.LSTM` / `GRU` / `RNN` as the longrnn layer with the same sizes and weights."""

    torch_class: type

    @classmethod
    def from_torch(cls, module: nn.Module, **options):
        """The longrnn layer with ``module``'s sizes, layout and weights, plus longrnn ``options`` (e.g.
        ``gate="fast"``). A ``forget_init`` other than "default" is applied to the loaded biases (it sets
        the forget/update gate's bias, as at construction); the other weights are ``module``'s.

        Raises:
            ValueError (`longrnn.errors.UsageError`): ``module`` is not a ``cls.torch_class``, or has a
                projection (``proj_size``), which longrnn's cells do not have.
        """
        if not isinstance(module, cls.torch_class):
            raise UsageError(f"{cls.__name__}.from_torch takes a torch.nn.{cls.torch_class.__name__}, "
                             f"got {type(module).__name__}")
        if getattr(module, "proj_size", 0):
            raise UsageError(f"proj_size={module.proj_size} has no longrnn counterpart; convert a module without it")
        if options.get("double"):
            raise UsageError("double=True layers have no torch counterpart whose weights they could take")
        weight = module.weight_hh_l0
        kwargs = dict(num_layers=module.num_layers, bias=module.bias, batch_first=module.batch_first,
                      dropout=module.dropout, bidirectional=module.bidirectional, device=weight.device,
                      dtype=weight.dtype)
        if isinstance(module, nn.RNN):
            kwargs["nonlinearity"] = module.nonlinearity
        layer = cls(module.input_size, module.hidden_size, **kwargs, **options)
        layer.load_state_dict(module.state_dict())
        layer.train(module.training)
        for cell in layer.cells:
            if hasattr(cell, "reset_keep_gate_bias"):
                cell.reset_keep_gate_bias()  # forget_init over the loaded biases ("default": nothing)
        return layer


class LSTM(_FromTorch, RecurrentLayer):
    """`torch.nn.LSTM` with a choice of forget gate (``gate``: sigmoid | fast | softsign | refine) and its
    initialisation (``forget_init``: default | constant:V | chrono:T_MAX | uniform), ``gate_parity``,
    ``chrono_input``, ``engine``; see `longrnn.cells.gated.LSTMCell`. Forward: ``output, (h_n, c_n)``.
    With the default gate it computes torch's LSTM (tested equal, outputs and gradients, in float64)."""

    cell_name = "lstm"
    torch_class = nn.LSTM
    mode = "LSTM"
    proj_size = 0  # torch's projection is not offered; from_torch refuses a module with one

    def _state_names(self) -> tuple[str, ...]:
        return ("h_0", "c_0")


class GRU(_FromTorch, RecurrentLayer):
    """`torch.nn.GRU` with a choice of update gate (``gate``) and its initialisation (``forget_init``); see
    `longrnn.cells.gated.GRUCell`. Forward: ``output, h_n``."""

    cell_name = "gru"
    torch_class = nn.GRU
    mode = "GRU"


class RNN(_FromTorch, RecurrentLayer):
    """`torch.nn.RNN` (Elman): ``nonlinearity`` tanh | relu; ``init="identity"`` (with ``init_scale``) is the
    IRNN (Le, Jaitly & Hinton 2015). Forward: ``output, h_n``. The positional order is torch's
    (``nonlinearity`` after ``num_layers``)."""

    torch_class = nn.RNN

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, init: str = "default", **options):
        self.init = check_choice("init", init, ("default", "identity"))
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        self.mode = f"RNN_{nonlinearity.upper()}"
        if init != "identity" and "init_scale" in options:
            raise UsageError("init_scale applies to init='identity' (the IRNN) only")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
                         dtype, nonlinearity=nonlinearity, **options)

    def cell_name_for(self, options: dict) -> str:
        return "irnn" if self.init == "identity" else "rnn"


class BRC(RecurrentLayer):
    """Bistable recurrent cells (Vecoven et al. 2021) as a layer; ``double=True`` is the warm-up paper's
    double layer. Forward: ``output, h_n``."""

    cell_name = "brc"


class NBRC(RecurrentLayer):
    """Neuromodulated bistable recurrent cells (Vecoven et al. 2021) as a layer; ``double=True`` as BRC."""

    cell_name = "nbrc"


class MGU(RecurrentLayer):
    """Minimal gated units (Zhou et al. 2016) as a layer. Forward: ``output, h_n``."""

    cell_name = "mgu"


class PLRNN(RecurrentLayer):
    """The piecewise-linear RNN (Koppe et al. 2019; rPLRNN, Schmidt et al. 2021) as a layer: options
    ``init``, ``integrators``, ``output``, ``initial_state`` (`longrnn.cells.plrnn`). h_n holds z."""

    cell_name = "plrnn"


class OrthogonalRNN(RecurrentLayer):
    """RNNs with an orthogonal recurrent matrix (`longrnn.cells.orthogonal`) as a layer: ``nonlinearity``,
    ``orthogonal_map``."""

    cell_name = "orthogonal"


class ConvUnitaryRNN(RecurrentLayer):
    """The convolutional orthogonal/unitary RNN, U = exp_⊛(A) by FFT (Magnasco 2023), as a layer: options
    ``lattice`` (e.g. "32x32"), ``channels``, ``complex_state``, ``stencil``, ... With a lattice,
    hidden_size must be channels × its sites. With ``complex_state=True`` the output has 2H features
    per direction ([real; imaginary]) and h_n is complex."""

    cell_name = "conv_unitary"
