"""A fast-gate, chrono-initialised LSTM as the encoder of your own classifier, on your own tensors.

The data here stands in for yours: sequences of 2 features and 200 steps whose class (one of 4) is set
by the first step alone, the rest noise, so the encoder must carry it 200 steps. Replace `make_data`
with your tensors: x (n, time, features) float, y (n,) class indices.

    python examples/fast_gate_classifier.py          # a few minutes on a laptop CPU (the first step compiles)
    python examples/fast_gate_classifier.py --tiny   # seconds (what the tests run)
"""

import sys

import torch
from torch import nn

import longrnn


def make_data(n: int, length: int, generator: torch.Generator):
    y = torch.randint(4, (n,), generator=generator)
    x = torch.randn(n, length, 2, generator=generator) * 0.5
    x[:, 0] = torch.stack([torch.cos(y * torch.pi / 2), torch.sin(y * torch.pi / 2)], -1) * 2  # the class, once
    return x, y


class Classifier(nn.Module):
    def __init__(self, features: int, classes: int, hidden: int, length: int):
        super().__init__()
        # torch.nn.LSTM's constructor and shapes; the fast gate σ(sinh z) and chrono biases for `length` steps.
        self.encoder = longrnn.nn.LSTM(features, hidden, batch_first=True, gate="fast",
                                       forget_init=f"chrono:{length}")
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        _, (h_n, _) = self.encoder(x)
        return self.head(h_n[-1])


def main(tiny: bool = False) -> float:
    torch.manual_seed(0)
    length, steps, hidden = (30, 20, 16) if tiny else (200, 300, 32)
    x_train, y_train = make_data(2048, length, torch.Generator().manual_seed(1))
    x_test, y_test = make_data(512, length, torch.Generator().manual_seed(2))  # its own stream
    model = Classifier(2, 4, hidden, length)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        batch = torch.randint(len(x_train), (64,))
        loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if (step + 1) % max(steps // 5, 1) == 0:
            print(f"step {step + 1}: training loss {loss.item():.3f}")
    with torch.no_grad():
        accuracy = (model(x_test).argmax(-1) == y_test).float().mean().item()
    print(f"test accuracy {accuracy:.3f} (chance 0.25)")
    return accuracy


if __name__ == "__main__":
    main(tiny="--tiny" in sys.argv)
