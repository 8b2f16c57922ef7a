"""modReLU, the activation of unitary and orthogonal RNNs (Arjovsky et al. 2016, eq. 8)."""

import torch
from torch import nn


class ModReLU(nn.Module):
    """modReLU (Arjovsky et al. 2016, eq. 8, for real inputs): ``sign(z) * relu(|z| + b)``.

    ``b`` is a learned per-unit bias, initialised uniform(-0.01, 0.01) as in the expRNN code.
    """

    def __init__(self, features: int, init_range: float = 0.01):
        super().__init__()
        self.bias = nn.Parameter(torch.empty(features).uniform_(-init_range, init_range))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sign(z) * torch.relu(z.abs() + self.bias)
