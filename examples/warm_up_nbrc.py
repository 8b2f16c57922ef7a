"""Warm up an nBRC layer to reachable multistability before your own training loop.

The warm-up (Lambrechts et al., Neural Networks 2023) trains only the recurrent layer, on your inputs and
without their labels, until its final states fall into many attractors (VAA* near 1): states that can
hold information for as long as needed. Then your own loop trains the whole model as usual.

Your data here: the first of T N(0, 1) inputs must be recalled at the end (the paper's copy-first
task, 50 steps here), as x (n, time, 1) and y (n, 1).

    python examples/warm_up_nbrc.py          # a few minutes on a laptop CPU
    python examples/warm_up_nbrc.py --tiny   # seconds (what the tests run)
"""

import sys

import torch
from torch import nn

import longrnn


class Recaller(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.rnn = longrnn.nn.NBRC(1, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        output, _ = self.rnn(x)
        return self.head(output[:, -1])


def make_data(n: int, length: int, generator: torch.Generator):
    x = torch.randn(n, length, 1, generator=generator)
    return x, x[:, 0].clone()


def train(model, x, y, steps: int) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        pick = torch.randint(len(x), (64,))
        loss = nn.functional.mse_loss(model(x[pick]), y[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


def main(tiny: bool = False) -> dict:
    length, hidden, warmup_steps, steps = (20, 8, 5, 10) if tiny else (50, 16, 50, 300)
    x, y = make_data(2048, length, torch.Generator().manual_seed(1))
    x_test, y_test = make_data(1024, length, torch.Generator().manual_seed(2))  # its own stream
    results = {}
    for warm in (False, True):
        torch.manual_seed(0)  # the same initial weights for both
        model = Recaller(hidden)
        if warm:
            before = longrnn.measure_vaa(model, x[:256], steps=200)["rnn"]
            longrnn.warm_up(model, x[:512], steps=warmup_steps)  # only model.rnn changes
            after = longrnn.measure_vaa(model, x[:256], steps=200)["rnn"]
            print(f"warm-up: VAA {before:.3f} -> {after:.3f} (1/256 = all states on one attractor, 1 = all apart)")
        train(model, x, y, steps)
        with torch.no_grad():
            results["warmed up" if warm else "plain"] = test = nn.functional.mse_loss(model(x_test), y_test).item()
        print(f"{'warmed up' if warm else 'plain'}: test MSE {test:.3f} (memoryless 1.0)")
    return results


if __name__ == "__main__":
    main(tiny="--tiny" in sys.argv)
