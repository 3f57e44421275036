"""Networks.  Study A: Alemi et al.'s stochastic MLP encoder and softmax decoder (exact).

Encoder: 784 -> 1024 -> 1024 -> 2K with ReLU; mu = first K outputs, sigma = softplus(rho - 5) on
the last K (the -5 makes the initial sigma ~ 0.0067, as in the official vib_demo code).
Decoder: logistic regression q(y|z) = softmax(W z + b), K -> 10.
Init: Xavier-uniform weights (gain 1, TensorFlow's default) and zero biases.
"""

import torch
import torch.nn.functional as F
from torch import nn


def _xavier(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return module


class StochasticMLP(nn.Module):
    """Alemi et al.'s VIB model: Gaussian encoder p(z|x) and linear softmax decoder q(y|z)."""

    def __init__(self, in_dim: int = 784, hidden: int = 1024, K: int = 256, classes: int = 10):
        super().__init__()
        self.K = K
        self.encoder = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * K),
        )
        self.decoder = nn.Linear(K, classes)
        _xavier(self)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 784) in [-1, 1] -> mu (B, K), sigma (B, K)."""
        h = self.encoder(x)
        mu, rho = h[:, : self.K], h[:, self.K :]
        return mu, F.softplus(rho - 5.0)

    def sample(self, mu: torch.Tensor, sigma: torch.Tensor, n: int = 1) -> torch.Tensor:
        """Reparameterised samples z = mu + sigma * eps: (n, B, K)."""
        eps = torch.randn((n, *mu.shape), device=mu.device, dtype=mu.dtype)
        return mu + sigma * eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the deterministic path q(y | z = mu(x)): (B, classes)."""
        return self.decoder(self.encode(x)[0])

