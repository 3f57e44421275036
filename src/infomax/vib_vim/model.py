"""Networks.  Study A: Alemi et al.'s stochastic MLP encoder and softmax decoder (exact).

Encoder: 784 -> 1024 -> 1024 -> 2K with ReLU; mu = first K outputs, sigma = softplus(rho - 5) on
the last K (the -5 makes the initial sigma ~ 0.0067, as in the official vib_demo code).
Decoder: logistic regression q(y|z) = softmax(W z + b), K -> 10.
Init: Xavier-uniform weights (gain 1, TensorFlow's default) and zero biases.

``StackedMLP`` is M of them as one module (a leading model dimension, batched matmuls): what the
trainer trains, a group of models at once.  ``StochasticMLP`` stays the readable one-model
definition: checkpoints hold its state_dict, evaluation loads it, and the tests check the stacked
model against it, model by model.
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the deterministic path q(y | z = mu(x)): (B, classes)."""
        return self.decoder(self.encode(x)[0])


class StackedMLP(nn.Module):
    """M StochasticMLPs as one module.  Layer weights are stored as (M, in, out) (the transpose of
    nn.Linear's), biases as (M, out); ``from_models`` copies solo models in, ``solo_state(m)``
    gives model m's state_dict in the solo layout."""

    NAMES = ("encoder.0", "encoder.2", "encoder.4", "decoder")

    def __init__(self, M: int, in_dim: int, hidden: int, K: int, classes: int):
        super().__init__()
        self.M, self.K = M, K
        sizes = [(in_dim, hidden), (hidden, hidden), (hidden, 2 * K), (K, classes)]
        self.weights = nn.ParameterList([nn.Parameter(torch.empty(M, i, o)) for i, o in sizes])
        self.biases = nn.ParameterList([nn.Parameter(torch.empty(M, o)) for _, o in sizes])

    @classmethod
    def from_models(cls, models: list[StochasticMLP]) -> "StackedMLP":
        first = models[0]
        lin = [first.encoder[0], first.encoder[2], first.encoder[4], first.decoder]
        out = cls(len(models), lin[0].in_features, lin[0].out_features, first.K, lin[3].out_features)
        with torch.no_grad():
            for m, model in enumerate(models):
                layers = [model.encoder[0], model.encoder[2], model.encoder[4], model.decoder]
                for W, b, layer in zip(out.weights, out.biases, layers):
                    W[m].copy_(layer.weight.T)
                    b[m].copy_(layer.bias)
        return out

    def solo_state(self, m: int, weights=None) -> dict:
        """Model m's state_dict as a StochasticMLP has it; ``weights``: tensors in the order of
        ``parameters()`` (e.g. the EMA average) instead of the live weights."""
        params = list(self.parameters()) if weights is None else list(weights)
        n = len(self.weights)
        Ws, bs = params[:n], params[n:]
        state = {}
        for name, W, b in zip(self.NAMES, Ws, bs):
            state[f"{name}.weight"] = W[m].detach().T.contiguous()
            state[f"{name}.bias"] = b[m].detach().clone()
        return state

    def _linear(self, x, i):
        """x (B, in) shared by every model, or (M, B, in) -> (M, B, out)."""
        W, b = self.weights[i], self.biases[i]
        h = torch.matmul(x, W) if x.dim() == 2 else torch.bmm(x, W)
        return h + b.unsqueeze(1)

    def encode(self, x):
        """x (B, in) or (M, B, in) in [-1, 1] -> mu, sigma (M, B, K)."""
        h = F.relu(self._linear(x, 0))
        h = F.relu(self._linear(h, 1))
        h = self._linear(h, 2)
        return h[..., : self.K], F.softplus(h[..., self.K:] - 5.0)

    def decode(self, z):
        """z (M, B, K) -> logits (M, B, classes)."""
        return self._linear(z, 3)
