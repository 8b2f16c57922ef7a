"""Every longrnn.nn layer and gate in float64, float32, float16, bfloat16 and under CPU autocast, eager and
under torch.compile: finite outputs and gradients, outputs and final states in the input's dtype (the
float32 inside does not leak), and compiled equal to eager."""

import pytest
import torch

import longrnn.nn as lnn

VARIANTS = {
    "LSTM": {},
    "LSTM-fast": {"gate": "fast", "forget_init": "chrono:20"},
    "LSTM-softsign": {"gate": "softsign"},
    "LSTM-refine": {"gate": "refine"},
    "GRU": {},
    "GRU-fast": {"gate": "fast"},
    "GRU-refine": {"gate": "refine"},
    "RNN": {},
    "RNN-identity": {"init": "identity", "nonlinearity": "relu"},
    "BRC": {},
    "NBRC-double": {"double": True},
    "MGU": {},
    "PLRNN": {},
    "OrthogonalRNN": {},
    "ConvUnitaryRNN": {"lattice": "2", "channels": 2},
    "ConvUnitaryRNN-complex": {"lattice": "4", "complex_state": True},
}
DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def make(name, dtype=torch.float32, layers=2):
    torch.manual_seed(0)
    return getattr(lnn, name.split("-")[0])(3, 4, num_layers=layers, batch_first=True, dtype=dtype, **VARIANTS[name])


def _states(h_n):
    return h_n if isinstance(h_n, tuple) else (h_n,)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_layer_runs_in_every_dtype(name, dtype):
    layer = make(name, DTYPES[dtype])
    x = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(1)).to(DTYPES[dtype]).requires_grad_()
    out, h_n = layer(x)
    assert out.dtype == x.dtype and torch.isfinite(out).all()
    for h in _states(h_n):
        assert torch.isfinite(h).all() and (h.dtype == x.dtype or h.is_complex())
    out.float().sum().backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in layer.parameters())
    if dtype in ("float16", "bfloat16"):  # close to the float64 layer: the gates and states ran in float32
        reference, _ = make(name, torch.float64)(x.detach().double())
        torch.testing.assert_close(out.double(), reference, atol=0.05, rtol=0.05)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_layer_runs_under_autocast(name):
    layer = make(name)
    x = torch.randn(2, 5, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, h_n = layer(x)
        out.float().sum().backward()
    assert torch.isfinite(out).all() and all(torch.isfinite(p.grad).all() for p in layer.parameters())
    reference, _ = make(name)(x)
    torch.testing.assert_close(out.float(), reference, atol=0.05, rtol=0.05)


COMPILED = [(name, "aot_eager") for name in ("LSTM-fast", "LSTM-refine", "GRU", "RNN", "NBRC-double", "MGU", "PLRNN",
                                             "OrthogonalRNN", "ConvUnitaryRNN", "ConvUnitaryRNN-complex")]
COMPILED.append(("LSTM", "inductor"))  # torch's own code generation once (the slow part: seconds per layer)


@pytest.mark.parametrize(("name", "backend"), COMPILED, ids=[f"{n}-{b}" for n, b in COMPILED])
def test_compiled_layer_equals_eager(name, backend):
    """torch.compile traces every layer (graph capture and autograd; `aot_eager` skips only the code
    generation, which `inductor`, torch's default, adds) and gives the eager numbers."""
    torch._dynamo.reset()
    layer = make(name, layers=1)
    x = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(1))
    eager_out, eager_h = layer(x)
    eager_out.sum().backward()
    eager_grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    compiled_out, compiled_h = torch.compile(layer, backend=backend)(x)
    compiled_out.sum().backward()
    torch.testing.assert_close(compiled_out, eager_out)
    for a, b in zip(_states(compiled_h), _states(eager_h)):
        torch.testing.assert_close(a, b)
    for p, g in zip(layer.parameters(), eager_grads):
        torch.testing.assert_close(p.grad, g)


@pytest.mark.parametrize("name", [*VARIANTS, "LSTM-fast-step"])
def test_second_derivatives_flow_for_gradient_penalties(name):
    """The double backward works for every layer with its default engine (auto), and with engine='step'."""
    options = {**VARIANTS["LSTM-fast"], "engine": "step"} if name == "LSTM-fast-step" else VARIANTS[name]
    torch.manual_seed(0)
    layer = getattr(lnn, name.split("-")[0])(3, 4, num_layers=2, batch_first=True, dtype=torch.float64, **options)
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    out, _ = layer(x)
    (grad,) = torch.autograd.grad(out.pow(2).sum(), x, create_graph=True)
    grad.pow(2).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())


def test_a_kernel_without_second_derivatives_says_which_option_to_change():
    layer = lnn.LSTM(3, 4, gate="fast", batch_first=True, engine="compiled")
    x = torch.randn(2, 5, 3, requires_grad=True)
    (grad,) = torch.autograd.grad(layer(x)[0].pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="gate 'fast' and engine 'compiled'.*engine 'auto' or 'step'"):
        grad.pow(2).sum().backward()
