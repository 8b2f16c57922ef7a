"""A piecewise-linear RNN fitted to a measured time series, with the manifold-attractor penalty.

The rPLRNN (Schmidt et al., ICLR 2021) pulls part of its units towards perfect integrators (A_ii = 1,
W_i: = 0, h_i = 0), so they can hold slow variables; add `longrnn.manifold_attractor_penalty` to your
loss. Your data: any (time, features) array; here a noisy two-frequency signal stands in for it, and
the model predicts the next observation from the past (one-step-ahead, teacher-forced).

    python examples/plrnn_penalty.py          # half a minute on a laptop CPU
    python examples/plrnn_penalty.py --tiny   # seconds (what the tests run)
"""

import sys

import numpy as np
import torch
from torch import nn

import longrnn


class Forecaster(nn.Module):
    def __init__(self, features: int, latent: int):
        super().__init__()
        self.plrnn = longrnn.nn.PLRNN(features, latent, batch_first=True)
        self.observe = nn.Linear(latent, features)

    def forward(self, x):
        z, _ = self.plrnn(x)
        return self.observe(z)


def main(tiny: bool = False) -> float:
    torch.manual_seed(0)
    steps, length = (20, 200) if tiny else (1500, 2000)
    t = np.arange(length) * 0.3
    series = np.stack([np.sin(t) + 0.5 * np.sin(0.05 * t), np.cos(t)], 1)  # your array: (time, features)
    series += np.random.default_rng(0).normal(0, 0.05, series.shape)
    data = torch.tensor(series, dtype=torch.float32)
    train, test = data[: length * 3 // 4], data[length * 3 // 4 :]  # the later part is held out
    windows = train.unfold(0, 50, 10).permute(0, 2, 1)  # (n, 50, features) windows of the training part
    model = Forecaster(2, 16)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        prediction = model(windows[:, :-1])
        fit = nn.functional.mse_loss(prediction, windows[:, 1:])
        penalty = longrnn.manifold_attractor_penalty(model, tau_a=1.0, tau_w=1.0, fraction=0.5)
        optimizer.zero_grad()
        (fit + penalty).backward()
        optimizer.step()
        if (step + 1) % max(steps // 5, 1) == 0:
            print(f"step {step + 1}: one-step MSE {fit.item():.4f}, penalty {penalty.item():.4f}")
    test_windows = test.unfold(0, 50, 10).permute(0, 2, 1)  # held out, in windows as long as the training ones
    with torch.no_grad():
        held_out = nn.functional.mse_loss(model(test_windows[:, :-1]), test_windows[:, 1:]).item()
    persistence = nn.functional.mse_loss(test_windows[:, :-1], test_windows[:, 1:]).item()
    print(f"held-out one-step MSE {held_out:.4f} (persistence x_t+1 = x_t: {persistence:.4f})")
    return held_out


if __name__ == "__main__":
    main(tiny="--tiny" in sys.argv)
