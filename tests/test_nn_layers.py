"""longrnn.nn: layers and cells with torch's conventions. With the default gate LSTM, GRU and RNN equal
torch's modules (outputs, final states and every gradient, float64) for every combination of layers,
directions, layout and packed input; every layer keeps torch's shapes and state_dict names; bad input is
one ValueError naming the argument and the shapes."""

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import longrnn.nn as lnn

TORCH = {"LSTM": (torch.nn.LSTM, {}), "GRU": (torch.nn.GRU, {}), "RNN": (torch.nn.RNN, {}),
         "RNN-relu": (torch.nn.RNN, {"nonlinearity": "relu"})}
COMBINATIONS = list(itertools.product(TORCH, (1, 2), (False, True), (False, True), (False, True)))


def _ours(name):
    return getattr(lnn, name.split("-")[0])


@pytest.mark.parametrize(("name", "layers", "bidirectional", "batch_first", "packed"), COMBINATIONS,
                         ids=[f"{n}-L{k}-{'bi' if b else 'uni'}-{'bf' if f else 'tf'}-{'packed' if p else 'padded'}"
                              for n, k, b, f, p in COMBINATIONS])
def test_equals_torch_outputs_states_and_gradients(name, layers, bidirectional, batch_first, packed):
    torch.manual_seed(0)
    cls, extra = TORCH[name]
    kwargs = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, dtype=torch.float64,
                  **extra)
    ref = cls(3, 5, **kwargs)
    ours = _ours(name)(3, 5, **kwargs)
    assert sorted(ours.state_dict()) == sorted(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    B, T = 4, 6
    x = torch.randn(B, T, 3, dtype=torch.float64) if batch_first else torch.randn(T, B, 3, dtype=torch.float64)
    directions = 2 if bidirectional else 1
    h0 = torch.randn(layers * directions, B, 5, dtype=torch.float64)
    hx = (h0, torch.randn_like(h0)) if name == "LSTM" else h0
    results = []
    for module in (ref, ours):
        xi = x.clone().requires_grad_()
        hi = tuple(h.clone().requires_grad_() for h in hx) if name == "LSTM" else hx.clone().requires_grad_()
        inp = pack_padded_sequence(xi, torch.tensor([6, 3, 5, 1]), batch_first=batch_first,
                                   enforce_sorted=False) if packed else xi
        out, h_n = module(inp, hi)
        if packed:
            assert isinstance(out, torch.nn.utils.rnn.PackedSequence)
            assert torch.equal(out.batch_sizes, inp.batch_sizes) and torch.equal(out.sorted_indices,
                                                                                 inp.sorted_indices)
            out = pad_packed_sequence(out, batch_first=batch_first)[0]
        finals = h_n if isinstance(h_n, tuple) else (h_n,)
        loss = (out ** 2).sum() + sum((f * torch.arange(f.numel(), dtype=f.dtype).view_as(f)).sum() for f in finals)
        module.zero_grad()
        loss.backward()
        hx_grads = [h.grad for h in (hi if isinstance(hi, tuple) else (hi,))]
        param_grads = {k: getattr(module, k).grad for k in ref.state_dict()}
        results.append((out, finals, xi.grad, hx_grads, param_grads))
    (o1, f1, gx1, gh1, gp1), (o2, f2, gx2, gh2, gp2) = results
    torch.testing.assert_close(o2, o1)
    for a, b in zip(f2, f1):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(gx2, gx1)
    for a, b in zip(gh2, gh1):
        torch.testing.assert_close(a, b)
    for key in gp1:
        torch.testing.assert_close(gp2[key], gp1[key], msg=key)


@pytest.mark.parametrize("name", list(TORCH))
def test_unbatched_input_is_a_batch_of_one(name):
    torch.manual_seed(0)
    layer = _ours(name)(3, 4, num_layers=2, bidirectional=True, **TORCH[name][1])
    x = torch.randn(7, 3)
    out, h_n = layer(x)
    out_b, h_b = layer(x.unsqueeze(1))
    assert out.shape == (7, 8)
    torch.testing.assert_close(out, out_b.squeeze(1))
    for a, b in zip(h_n if isinstance(h_n, tuple) else (h_n,), h_b if isinstance(h_b, tuple) else (h_b,)):
        assert a.shape == (4, 4)
        torch.testing.assert_close(a, b.squeeze(1))


@pytest.mark.parametrize("name", list(TORCH))
def test_from_torch_keeps_the_weights(name):
    torch.manual_seed(0)
    cls, extra = TORCH[name]
    ref = cls(3, 5, num_layers=2, batch_first=True, **extra)
    converted = _ours(name).from_torch(ref)
    assert converted.batch_first and converted.num_layers == 2
    x = torch.randn(2, 9, 3)
    torch.testing.assert_close(converted(x)[0], ref(x)[0])


def test_from_torch_with_a_fast_gate_and_chrono_keeps_all_but_the_gate_biases():
    torch.manual_seed(0)
    ref = torch.nn.LSTM(3, 5)
    fast = lnn.LSTM.from_torch(ref, gate="fast", forget_init="chrono:100")
    assert fast.cells[0].gate == "fast"
    for key in ("weight_ih_l0", "weight_hh_l0"):
        assert torch.equal(getattr(fast, key), getattr(ref, key))
    forget = slice(5, 10)
    assert not fast.bias_ih_l0[forget].any()  # the chrono bias is in bias_hh only, not counted twice
    biases = torch.sinh(fast.bias_hh_l0[forget])  # fast gate σ(sinh z): parity maps the sigmoid bias b to asinh b
    assert torch.all((biases >= 0) & (biases <= torch.log(torch.tensor(99.0)) + 1e-5))
    assert torch.equal(fast.bias_hh_l0[10:], ref.bias_hh_l0[10:])  # g and o blocks untouched
    with pytest.raises(ValueError, match="takes a torch.nn.LSTM, got GRU"):
        lnn.LSTM.from_torch(torch.nn.GRU(3, 5))


LAYERS = {
    "LSTM": {"gate": "fast", "forget_init": "chrono:50"},
    "GRU": {"gate": "refine"},
    "RNN": {"init": "identity", "nonlinearity": "relu"},
    "BRC": {},
    "NBRC": {"double": True},
    "MGU": {},
    "PLRNN": {"initial_state": "learned"},
    "OrthogonalRNN": {},
    "ConvUnitaryRNN": {"lattice": "2x2", "channels": 2},
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_every_layer_has_torchs_shapes_and_round_trips_its_state_dict(name):
    torch.manual_seed(0)
    layer = getattr(lnn, name)(3, 8, num_layers=2, bidirectional=True, batch_first=True, **LAYERS[name])
    x = torch.randn(4, 6, 3)
    out, h_n = layer(x)
    assert out.shape == (4, 6, 16)
    for h in h_n if isinstance(h_n, tuple) else (h_n,):
        assert h.shape == (4, 4, 8)
    copy = getattr(lnn, name)(3, 8, num_layers=2, bidirectional=True, batch_first=True, **LAYERS[name])
    copy.load_state_dict(layer.state_dict())
    torch.testing.assert_close(copy(x)[0], out)
    assert all("_l0" in k or "_l1" in k for k in layer.state_dict())
    packed = pack_padded_sequence(x, torch.tensor([6, 2, 4, 5]), batch_first=True, enforce_sorted=False)
    out_p, _ = layer(packed)
    first = pad_packed_sequence(out_p, batch_first=True)[0][0]
    torch.testing.assert_close(first, out[0])  # the full-length sequence is unaffected by the others' padding
    out.sum().backward()
    assert all(p.grad is not None for p in layer.parameters())


CELLS = [("LSTMCell", torch.nn.LSTMCell), ("GRUCell", torch.nn.GRUCell), ("RNNCell", torch.nn.RNNCell)]


@pytest.mark.parametrize(("name", "reference"), CELLS)
def test_cells_equal_torchs_cells(name, reference):
    torch.manual_seed(0)
    ref = reference(3, 5, dtype=torch.float64)
    ours = getattr(lnn, name)(3, 5, dtype=torch.float64)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(4, 3, dtype=torch.float64)
    a, b = ref(x), ours(x)
    for p, q in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        torch.testing.assert_close(q, p)
    def first(state):  # the first sequence's state, unbatched
        return tuple(t[0] for t in state) if isinstance(state, tuple) else state[0]

    a, b = ref(x[0], first(a)), ours(x[0], first(b))
    for p, q in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        torch.testing.assert_close(q, p)


@pytest.mark.parametrize(("name", "options"), [(f"{n}Cell" if n != "ConvUnitaryRNN" else "ConvUnitaryRNNCell", o)
                                               for n, o in LAYERS.items() if "double" not in o])
def test_every_cell_steps_with_torchs_conventions(name, options):
    torch.manual_seed(0)
    cell = getattr(lnn, name)(3, 8, **options)
    state = cell(torch.randn(2, 3))
    state = cell(torch.randn(2, 3), state)
    for s in state if isinstance(state, tuple) else (state,):
        assert s.shape == (2, 8)


def _bad_inputs():
    lstm = dict(cls=lnn.LSTM, kwargs={})
    gru_bf = dict(cls=lnn.GRU, kwargs={"batch_first": True, "num_layers": 2})
    return [
        (lstm, lambda: torch.randn(5, 2, 4), "input has 4 features in its last axis, expected input_size = 3"),
        (lstm, lambda: torch.randn(5, 3), None),  # unbatched: fine
        (lstm, lambda: torch.randn(1, 5, 2, 3), "input must be 3-D (time, batch, input_size)"),
        (lstm, lambda: torch.randn(0, 2, 3), "input has no time steps"),
        (lstm, lambda: torch.randn(5, 2, 3, dtype=torch.float64), "input is torch.float64, the layer's parameters "
                                                                   "torch.float32"),
        (gru_bf, lambda: (torch.randn(2, 5, 3), torch.randn(2, 3, 4)),
         "hx must have shape (num_layers * directions, batch, hidden_size) = (2, 2, 4), got (2, 3, 4)"),
        (gru_bf, lambda: (torch.randn(2, 5, 3), torch.randn(1, 2, 4)), "= (2, 2, 4), got (1, 2, 4)"),
        (lstm, lambda: (torch.randn(5, 2, 3), torch.zeros(1, 2, 4)), "hx must be a pair (h_0, c_0)"),
        (lstm, lambda: (torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 5))),
         "c_0 must have shape (num_layers * directions, batch, hidden_size) = (1, 2, 4), got (1, 2, 5)"),
        (lstm, lambda: [1, 2, 3], "input must be a tensor or a PackedSequence, got list"),
    ]


@pytest.mark.parametrize(("layer", "make", "message"), _bad_inputs())
def test_bad_input_is_one_value_error_naming_it(layer, make, message):
    module = layer["cls"](3, 4, **layer["kwargs"])
    args = make()
    args = args if isinstance(args, tuple) else (args,)
    if message is None:
        module(*args)
        return
    with pytest.raises(ValueError) as info:
        module(*args)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: lnn.LSTM(3, 4, dropout=1.0), "dropout must be a probability in [0, 1), got 1.0"),
        (lambda: lnn.LSTM(3, 0), "hidden_size must be a positive integer, got 0"),
        (lambda: lnn.LSTM(3, 4, gate="bogus"), "unknown gate 'bogus'"),
        (lambda: lnn.LSTM(3, 4, bias=False), "bias=False is not available for LSTM"),
        (lambda: lnn.LSTM(3, 4, lattice="2x2"), "cell 'lstm' has no option 'lattice'"),
        (lambda: lnn.RNN(3, 4, nonlinearity="sigmoid"), "unknown nonlinearity 'sigmoid'"),
        (lambda: lnn.RNN(3, 4, init_scale=0.5), "init_scale applies to init='identity'"),
        (lambda: lnn.NBRC(3, 5, double=True), "it must be even, got 5"),
        (lambda: lnn.ConvUnitaryRNN(3, 5, lattice="3x3"), "hidden_size 5 does not fit the lattice 3x3"),
        (lambda: lnn.LSTMCell(3, 4, gate="bogus"), "unknown gate 'bogus'"),
    ],
)
def test_bad_options_are_refused_at_construction(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)


def test_a_lattice_whose_generator_is_zero_is_named_at_construction():
    with pytest.warns(UserWarning, match="the skew generator P - Pᵀ is zero"):
        lnn.ConvUnitaryRNN(3, 4, lattice="2x2")


def test_torch_parameter_names_read_the_cells_parameters():
    layer = lnn.GRU(3, 4, num_layers=2, bidirectional=True)
    assert layer.weight_hh_l1_reverse is layer.cells[3].weight_hh
    with pytest.raises(AttributeError):
        _ = layer.weight_hh_l2


def test_code_written_for_torch_layers_runs():
    """What torch code does with an LSTM: assign or swap a parameter by its torch name (functional_call),
    read all_weights, call flatten_parameters, build on the meta device; a missing key is named as torch
    names it."""
    torch.manual_seed(0)
    ours, ref = lnn.LSTM(3, 4), torch.nn.LSTM(3, 4)
    x = torch.randn(5, 2, 3)
    out, _ = torch.func.functional_call(ours, ref.state_dict(), (x,))
    torch.testing.assert_close(out, ref(x)[0])
    assert isinstance(ours.cells[0].weight_ih, torch.nn.Parameter)  # restored after the call
    ours.weight_hh_l0 = torch.nn.Parameter(torch.zeros(16, 4))
    assert not ours.cells[0].weight_hh.any()
    ours.flatten_parameters()
    assert [p.shape for p in ours.all_weights[0]] == [p.shape for p in ref.all_weights[0]]
    result = ours.load_state_dict({k: v for k, v in ref.state_dict().items() if k != "bias_hh_l0"}, strict=False)
    assert result.missing_keys == ["bias_hh_l0"]
    with torch.device("meta"):
        layer = lnn.GRU(3, 4, num_layers=2)
    assert layer(torch.zeros(5, 2, 3, device="meta"))[0].shape == (5, 2, 4)


def test_from_torch_keeps_the_mode_and_refuses_what_has_no_torch_counterpart():
    converted = lnn.GRU.from_torch(torch.nn.GRU(3, 4).eval())
    assert not converted.training
    with pytest.raises(ValueError, match="double=True layers have no torch counterpart"):
        lnn.GRU.from_torch(torch.nn.GRU(3, 4), double=True)
    with pytest.warns(UserWarning, match="with num_layers=1 it does nothing"):
        lnn.GRU(3, 4, dropout=0.5)


def test_a_cells_state_of_another_dtype_is_named():
    cell = lnn.GRUCell(3, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="hx is torch.float32 on cpu, the cell's parameters torch.float64"):
        cell(torch.randn(2, 3, dtype=torch.float64), torch.zeros(2, 4))
