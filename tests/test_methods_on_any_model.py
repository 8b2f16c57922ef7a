"""The methods act on any model holding longrnn layers, and the gate initialisations on torch's own LSTMs and
GRUs: warm-up and VAA (on a layer and inside a user's module), chrono and uniform gate initialisation,
the manifold-attractor penalty, the gate diagnostics."""

import math

import pytest
import torch
from torch import nn

import longrnn
from longrnn.models import SequenceModel


class Classifier(nn.Module):
    """A user's own model: an embedding, a longrnn layer (time-first), a head."""

    def __init__(self, layer):
        super().__init__()
        self.embed = nn.Linear(2, 4)
        self.rnn = layer
        self.head = nn.Linear(layer.hidden_size, 3)

    def forward(self, x):  # x: (batch, time, 2)
        out, _ = self.rnn(self.embed(x).transpose(0, 1))
        return self.head(out[-1])


def test_warm_up_of_a_layer_equals_the_warm_up_of_the_same_sequence_model():
    """A longrnn.nn layer is warmed exactly as SequenceModel (the harness's model) with the same cells."""
    torch.manual_seed(0)
    model = SequenceModel("nbrc", 2, 8, 1, num_layers=2)
    layer = longrnn.nn.NBRC(2, 8, num_layers=2, batch_first=True)
    for cell, twin in zip(layer.cells, model.cells):
        cell.load_state_dict(twin.state_dict())
    x = torch.randn(32, 12, 2)
    a = longrnn.warm_up(model, x, steps=3, batch_size=8, generator=torch.Generator().manual_seed(1))
    b = longrnn.warm_up(layer, x, steps=3, batch_size=8, generator=torch.Generator().manual_seed(1))
    assert a["vaa_star"] == b["vaa_star"]
    for cell, twin in zip(layer.cells, model.cells):
        for p, q in zip(cell.parameters(), twin.parameters()):
            torch.testing.assert_close(p, q)


def test_warm_up_inside_a_users_model_acts_on_the_layer_only_with_its_own_inputs():
    torch.manual_seed(0)
    model = Classifier(longrnn.nn.NBRC(4, 16))
    embed, head = model.embed.weight.clone(), model.head.weight.clone()
    before = [p.clone() for p in model.rnn.parameters()]
    x = torch.randn(64, 20, 2)
    vaa_before = longrnn.measure_vaa(model, x[:32], steps=300)["rnn"]
    history = longrnn.warm_up(model, x, steps=30, batch_size=16, lr=0.05)
    assert list(history) == ["rnn"] and len(history["rnn"]["loss"]) == 30
    assert torch.equal(model.embed.weight, embed) and torch.equal(model.head.weight, head)
    assert any(not torch.equal(p, q) for p, q in zip(model.rnn.parameters(), before))
    assert longrnn.measure_vaa(model, x[:32], steps=300)["rnn"] > vaa_before  # more reachable attractors


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: nn.Linear(2, 2), "holds no longrnn layer"),
        (lambda: longrnn.nn.GRU(2, 4, bidirectional=True), "act on unidirectional layers"),
    ],
)
def test_warm_up_refuses_what_it_cannot_warm(make, message):
    with pytest.raises(ValueError, match=message):
        longrnn.warm_up(make(), torch.randn(8, 5, 2), steps=1, batch_size=4)


def _keep_block(bias, hidden):
    return bias[hidden:2 * hidden]


@pytest.mark.parametrize("module", [nn.LSTM(3, 16, num_layers=2, bidirectional=True), nn.LSTMCell(3, 16),
                                    nn.GRU(3, 16), longrnn.nn.LSTM(3, 16), longrnn.nn.GRUCell(3, 16)],
                         ids=["torch.LSTM", "torch.LSTMCell", "torch.GRU", "longrnn.LSTM", "longrnn.GRUCell"])
def test_chrono_sets_the_keep_gate_of_torch_and_longrnn_modules(module):
    torch.manual_seed(0)
    weights = {k: v.clone() for k, v in module.state_dict().items() if "weight" in k}
    assert longrnn.init.chrono_(module, 100) is module
    biases = {k: v for k, v in module.state_dict().items() if "bias_hh" in k}
    assert biases
    for name, bias_hh in biases.items():
        bias_ih = module.state_dict()[name.replace("bias_hh", "bias_ih")]
        keep = _keep_block(bias_hh, 16)
        assert not _keep_block(bias_ih, 16).any()  # not counted twice
        assert torch.all((keep >= 0) & (keep <= math.log(99) + 1e-6)) and keep.std() > 0.3
        if "LSTM" in type(module).__name__:
            torch.testing.assert_close(bias_hh[:16], -keep)  # the input gate: -b
    for k, v in weights.items():
        assert torch.equal(module.state_dict()[k], v)


def test_uniform_gate_init_gives_gate_values_spread_over_the_unit_interval():
    torch.manual_seed(0)
    lstm = longrnn.init.uniform_gate_init_(nn.LSTM(3, 64))
    gates = torch.sigmoid(_keep_block(lstm.bias_hh_l0, 64))
    assert not _keep_block(lstm.bias_ih_l0, 64).any()
    assert gates.min() >= 1 / 64 - 1e-6 and gates.max() <= 1 - 1 / 64 + 1e-6 and gates.std() > 0.2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: longrnn.init.chrono_(nn.LSTM(3, 4), 1.5), "chrono needs a finite T_MAX > 2"),
        (lambda: longrnn.init.chrono_(nn.LSTM(3, 4, bias=False), 10), "LSTM(bias=False) has no gate biases"),
        (lambda: longrnn.init.chrono_(nn.RNN(3, 4), 10), "holds no LSTM or GRU"),
    ],
)
def test_gate_init_refuses_what_it_cannot_do(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_the_penalty_finds_every_plrnn_layer_in_a_users_model():
    torch.manual_seed(0)
    model = nn.Sequential(longrnn.nn.PLRNN(3, 8, num_layers=2))
    cells = list(model[0].cells)
    total = longrnn.manifold_attractor_penalty(model, 1.0, 2.0, 0.5)
    expected = sum(longrnn.manifold_attractor_penalty(c, 1.0, 2.0, 0.5) for c in cells)
    torch.testing.assert_close(total, expected)
    total.backward()
    assert cells[1].A.grad is not None
    with pytest.raises(ValueError, match="holds no PLRNN cell"):
        longrnn.manifold_attractor_penalty(nn.LSTM(3, 4), 1.0, 1.0)


def test_gate_statistics_of_a_layer_inside_a_users_model():
    torch.manual_seed(0)
    model = Classifier(longrnn.nn.LSTM(4, 8, forget_init="constant:30"))
    stats = longrnn.gate_statistics(model, torch.randn(4, 10, 2))["rnn"]
    assert stats["gate_at_1"] > 0.9  # σ(30) is 1.0 in float32


def test_a_layer_inside_a_users_module_is_measured_on_what_it_receives():
    """The container call equals the call on the layer itself with the inputs it receives (time-first
    here): the recorded inputs are put batch-first once, not twice."""
    torch.manual_seed(0)
    model = Classifier(longrnn.nn.NBRC(4, 8))
    x = torch.randn(32, 20, 2)
    with torch.no_grad():
        received = model.embed(x).transpose(0, 1)  # what model.rnn sees: (time, batch, 4)
    inside = longrnn.measure_vaa(model, x, steps=50, generator=torch.Generator().manual_seed(1))["rnn"]
    alone = longrnn.measure_vaa(model.rnn, received, steps=50, generator=torch.Generator().manual_seed(1))
    assert inside == alone
