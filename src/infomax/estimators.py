"""Information-theoretic estimators: pure tensor functions, no modules, no state.

Shapes are in the docstrings; B = batch size, K = code dimension. All values are in nats unless a
name says bits; divide by ln 2 (``NATS_PER_BIT``) to report bits, as the official VIB code does.
"""

import math

import torch

NATS_PER_BIT = math.log(2.0)


def gaussian_kl_to_standard(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) per example.

    mu, sigma: (B, K), sigma > 0.  Returns (B,): the closed form summed over the K dimensions,
    0.5 * sum(mu^2 + sigma^2 - 2 log sigma - 1).
    """
    return 0.5 * (mu.square() + sigma.square() - 2.0 * sigma.log() - 1.0).sum(dim=-1)


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances (N, M) between rows of a (N, K) and b (M, K)."""
    # The expanded form is one matmul (fast); clamp the small negatives that rounding produces.
    d = a.square().sum(-1, keepdim=True) + b.square().sum(-1).unsqueeze(0) - 2.0 * a @ b.T
    return d.clamp_min_(0.0)


def kernel_matrix(d2: torch.Tensor, dim: int, kernel: str, scales) -> torch.Tensor:
    """Kernel values from squared distances d2, summed over scales (WAE style).

    imq: C / (C + d2) with C = 2 * dim * s   (inverse multiquadric, heavy tails: keeps a gradient
         when the two samples are far apart, which is why WAE prefers it)
    rbf: exp(-d2 / C) with C = 2 * dim * s
    dim is the code dimension K (the prior N(0, I_K) has E||z - z'||^2 = 2K, so C sets the
    length scale relative to the prior's own spread).
    """
    out = torch.zeros_like(d2)
    for s in scales:
        c = 2.0 * dim * float(s)
        if kernel == "imq":
            out = out + c / (c + d2)
        elif kernel == "rbf":
            out = out + torch.exp(-d2 / c)
        else:
            raise ValueError(f"unknown MMD kernel {kernel!r}: expected 'imq' or 'rbf'")
    return out


def mmd2(x: torch.Tensor, y: torch.Tensor, kernel: str = "imq", scales=(1.0,)) -> torch.Tensor:
    """Unbiased minibatch estimate of MMD^2 between the samples x (N, K) and y (M, K).

    MMD^2 = E k(x,x') + E k(y,y') - 2 E k(x,y), with the diagonal terms left out of the first two
    expectations (U-statistic), so the estimate is centred on 0 when x and y share a distribution
    (it can then be slightly negative).  Returns a scalar tensor.
    """
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"mmd2 needs at least 2 samples on each side, got {n} and {m}")
    k = x.shape[1]
    kxx = kernel_matrix(_sq_dists(x, x), k, kernel, scales)
    kyy = kernel_matrix(_sq_dists(y, y), k, kernel, scales)
    kxy = kernel_matrix(_sq_dists(x, y), k, kernel, scales)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return sxx + syy - 2.0 * kxy.mean()
