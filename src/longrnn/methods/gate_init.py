"""Gate initialisations that set how long an LSTM or GRU keeps its state, in place, on any model: on
`torch.nn.LSTM` / `GRU` / `LSTMCell` / `GRUCell` and on longrnn's gated layers and cells alike.
Importable as ``longrnn.init``:

    longrnn.init.chrono_(model, t_max=1000)     # chrono initialisation (Tallec & Ollivier, ICLR 2018)
    longrnn.init.uniform_gate_init_(model)      # uniform gate initialisation (Gu et al., ICML 2020)

Chrono: the forget (LSTM) / update (GRU) gate's bias b = log U[1, t_max - 1], so the units' time scales
1/(1 - σ(b)) spread up to about t_max steps; the LSTM's input gate gets -b. Uniform: b = logit(u),
u ~ U[1/H, 1 - 1/H]. The bias goes into ``bias_hh`` and the same block of ``bias_ih`` is zeroed, so it is
not counted twice; every other parameter is left as it is. Torch's gate blocks are (i, f, g, o) for the
LSTM and (r, z, n) for the GRU, whose keep gate is z (h' = (1 - z) n + z h). On longrnn's cells the bias
is mapped into the cell's own gate (e.g. asinh b for the fast gate), as its ``forget_init`` option does.
Draws use torch's global random generator (seed it with ``torch.manual_seed``).
"""

from __future__ import annotations

import torch
from torch import nn

from longrnn.cells.init import forget_biases, parse_forget_init, write_keep_gate_bias
from longrnn.errors import UsageError

TORCH_GATED = {nn.LSTM: "lstm", nn.LSTMCell: "lstm", nn.GRU: "gru", nn.GRUCell: "gru"}
KEEP_BLOCK = {"lstm": 1, "gru": 1}  # f of (i, f, g, o); z of (r, z, n)
INPUT_BLOCK = 0  # the LSTM's input gate i


def chrono_(module: nn.Module, t_max: float) -> nn.Module:
    """Chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?") of every
    LSTM and GRU in ``module``, in place; returns ``module``. ``t_max``: the longest time scale, in steps
    (the expected range of dependencies), > 2.

    Raises:
        ValueError (`longrnn.errors.UsageError`): ``t_max`` not a finite number > 2; ``module`` holds no
            LSTM or GRU, or one without biases.
    """
    return _keep_gate_init_(module, f"chrono:{t_max}")


def uniform_gate_init_(module: nn.Module) -> nn.Module:
    """Uniform gate initialisation (Gu et al. 2020, "Improving the Gating Mechanism of Recurrent Neural
    Networks") of every LSTM and GRU in ``module``, in place; returns ``module``.

    Raises:
        ValueError (`longrnn.errors.UsageError`): ``module`` holds no LSTM or GRU, or one without biases.
    """
    return _keep_gate_init_(module, "uniform")


def _keep_gate_init_(module: nn.Module, spec: str) -> nn.Module:
    kind, _ = parse_forget_init(spec)  # a bad t_max is a UsageError here
    touched = 0
    for sub in module.modules():
        if hasattr(sub, "reset_keep_gate_bias"):  # longrnn's gated cells (inside layers, too)
            sub.forget_init = spec
            sub.reset_keep_gate_bias()
            touched += 1
        elif type(sub) in TORCH_GATED:
            _init_torch_module(sub, TORCH_GATED[type(sub)], spec, kind)
            touched += 1
    if not touched:
        raise UsageError(f"{type(module).__name__} holds no LSTM or GRU (torch.nn or longrnn.nn) to initialise")
    return module


@torch.no_grad()
def _init_torch_module(module: nn.Module, family: str, spec: str, kind: str) -> None:
    params = dict(module.named_parameters(recurse=False))
    pairs = [(name.replace("bias_hh", "bias_ih", 1), name) for name in params if name.startswith("bias_hh")]
    if not pairs:
        raise UsageError(f"{type(module).__name__}(bias=False) has no gate biases to initialise")
    companions = [INPUT_BLOCK] if family == "lstm" and kind == "chrono" else []
    for ih_name, hh_name in pairs:
        b = forget_biases(spec, module.hidden_size).to(params[hh_name])
        write_keep_gate_bias(params[ih_name], params[hh_name], module.hidden_size, KEEP_BLOCK[family], b,
                             companions, b)
