"""MemUP in a user's own loop (`longrnn.MemUP.for_layer` + `fit`): it learns a dependency longer than its
rollout on sequences the user brings, and bad data is one ValueError naming it. The CLI trainer runs on
the same object (`MemUP.loss` / `advance`), tested in test_memup.py."""

import pytest
import torch

import longrnn


def recall_data(n, length, classes, seed):
    """The class at step 0, asked at the last step only (-100 elsewhere)."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(classes, (n,), generator=g)
    x = torch.randn(n, length, classes + 1, generator=g) * 0.1
    x[:, 0, :classes] = torch.nn.functional.one_hot(label, classes) * 3.0
    x[:, -1, classes] = 3.0
    y = torch.full((n, length), -100)
    y[:, -1] = label
    return x, y


def test_memup_learns_a_dependency_longer_than_its_rollout():
    torch.manual_seed(0)
    x, y = recall_data(512, 12, 2, seed=1)
    x_test, y_test = recall_data(256, 12, 2, seed=2)
    memup = longrnn.MemUP.for_layer(longrnn.nn.GRU(3, 16, batch_first=True), output_size=2, rollout=4, targets=2,
                                    predict_every=2, hidden=32)
    optimizer = torch.optim.Adam(memup.parameters(), lr=3e-3)
    for _ in range(60):
        pick = torch.randint(len(x), (64,))
        memup.fit(x[pick], y[pick], optimizer)
    prediction = memup.predict(x_test)
    assert prediction.shape == (256, 12, 2)
    accuracy = (prediction[:, -1].argmax(-1) == y_test[:, -1]).float().mean().item()
    assert accuracy > 0.9  # chance 0.5; backpropagation reached 4 of the 11 steps between cue and question


def test_memup_with_values_and_the_local_detector():
    torch.manual_seed(0)
    x = torch.randn(8, 10, 3)
    y = torch.full((8, 10, 2), float("nan"))
    y[:, -1] = x[:, 0, :2]
    memup = longrnn.MemUP.for_layer(longrnn.nn.LSTM(3, 8), output_size=2, loss="mse", rollout=5, targets=3,
                                    detector="local", hidden=16)
    loss = memup.fit(x, y, torch.optim.SGD(memup.parameters(), lr=0.1))
    assert loss == loss and loss > 0  # finite


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.fit(torch.randn(4, 6, 5), torch.zeros(4, 6, dtype=torch.long), None),
         "x must be (batch, time, 3)"),
        (lambda m: m.fit(torch.randn(4, 6, 3), torch.zeros(4, 5, dtype=torch.long), None), "y must start with x's"),
        (lambda m: m.fit(torch.randn(4, 6, 3), torch.zeros(4, 6), None), "class indices for loss 'cross_entropy'"),
        (lambda m: m.fit(torch.randn(4, 6, 3), torch.full((4, 6), 7), None), "class indices must be in [0, 2)"),
        (lambda m: m.loss(), "give MemUP.fit the next one"),
    ],
)
def test_bad_data_is_one_value_error(call, message):
    memup = longrnn.MemUP.for_layer(longrnn.nn.GRU(3, 4), output_size=2, rollout=3, targets=2)
    with pytest.raises(ValueError) as info:
        call(memup)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: longrnn.MemUP.for_layer(longrnn.nn.GRU(3, 4, bidirectional=True), 2), "unidirectional layers"),
        (lambda: longrnn.MemUP.for_layer(longrnn.nn.GRU(3, 4), 2, loss="hinge"), "unknown memup loss 'hinge'"),
        (lambda: longrnn.MemUP.for_layer(longrnn.nn.GRU(3, 4), 2, detector="oracle"), "unknown memup detector"),
        (lambda: longrnn.MemUP.for_layer(longrnn.nn.GRU(3, 4), 2, rollout=0), "rollout must be a positive"),
    ],
)
def test_bad_options_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()
