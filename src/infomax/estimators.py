"""Information-theoretic estimators: pure tensor functions, no modules, no state.

Shapes are in the docstrings; B = batch size, K = code dimension. All values are in nats unless a
name says bits; divide by ln 2 (``NATS_PER_BIT``) to report bits, as the official VIB code does.
"""

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

NATS_PER_BIT = math.log(2.0)


def gaussian_kl_to_standard(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) per example.

    mu, sigma: (B, K), sigma > 0.  Returns (B,): the closed form summed over the K dimensions,
    0.5 * sum(mu^2 + sigma^2 - 2 log sigma - 1).
    """
    return 0.5 * (mu.square() + sigma.square() - 2.0 * sigma.log() - 1.0).sum(dim=-1)


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances (..., N, M) between rows of a (..., N, K) and b (..., M, K)."""
    # The expanded form is one matmul (fast); clamp the small negatives that rounding produces.
    d = a.square().sum(-1, keepdim=True) + b.square().sum(-1).unsqueeze(-2) - 2.0 * a @ b.transpose(-1, -2)
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
    (it can then be slightly negative).  Returns a scalar tensor; with leading batch dimensions,
    x (..., N, K) and y (..., M, K), one estimate per batch entry (...,).
    """
    n, m = x.shape[-2], y.shape[-2]
    if n < 2 or m < 2:
        raise ValueError(f"mmd2 needs at least 2 samples on each side, got {n} and {m}")
    k = x.shape[-1]
    kxx = kernel_matrix(_sq_dists(x, x), k, kernel, scales)
    kyy = kernel_matrix(_sq_dists(y, y), k, kernel, scales)
    kxy = kernel_matrix(_sq_dists(x, y), k, kernel, scales)
    if x.dim() == 2:       # one estimate: the reductions exactly as they always were
        sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
        syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        return sxx + syy - 2.0 * kxy.mean()
    diag = lambda t: t.diagonal(dim1=-2, dim2=-1).sum(-1)  # noqa: E731
    sxx = (kxx.sum((-2, -1)) - diag(kxx)) / (n * (n - 1))
    syy = (kyy.sum((-2, -1)) - diag(kyy)) / (m * (m - 1))
    return sxx + syy - 2.0 * kxy.mean((-2, -1))


# -----------------------------------------------------------------------------
# Study B: lower bounds on I(X; Y) from a critic's score matrix, and CLUB's upper bound.
#
# scores (B, B) or (B, B, L): scores[i, j, l] = T(y_i, x_j at position l).  Pairs on the diagonal
# (i == j) come from the joint, every other pair in the batch from the product of marginals (DIM's
# negatives: all other images, at every location).  L = 1 for a global critic, L = H*W locations
# of a local feature map for DIM(L).


def _pos_neg(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Positive scores (B, L), the scores (B, B, L) with every positive replaced by -inf (so that
    softplus, exp and logsumexp ignore it), and the number of negatives B (B - 1) L.

    Masking instead of boolean indexing keeps the shapes static: no host synchronisation on a GPU."""
    if scores.dim() not in (2, 3) or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"scores must be (B, B) or (B, B, L), got {tuple(scores.shape)}")
    b = scores.shape[0]
    if b < 2:
        raise ValueError("a score matrix needs a batch of at least 2 (negatives are the other pairs)")
    s = scores.reshape(b, b, -1)
    eye = torch.eye(b, dtype=torch.bool, device=s.device).unsqueeze(-1)
    pos = torch.diagonal(s, dim1=0, dim2=1).T
    return pos, s.masked_fill(eye, -math.inf), b * (b - 1) * s.shape[2]


def jsd_mi(scores: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon MI estimator (DIM eq. 4, softplus form), a scalar in nats:

        E_joint[-softplus(-T)] - E_marginals[softplus(T)]

    It equals minus the class-balanced binary cross-entropy of T as a logit for "joint pair";
    its optimum is 2 JSD(joint || marginals) - 2 log 2, a monotone function of the MI (not the MI)."""
    pos, neg, n_neg = _pos_neg(scores)
    return -F.softplus(-pos).mean() - F.softplus(neg).sum() / n_neg


def dv_mi(scores: torch.Tensor) -> torch.Tensor:
    """Donsker-Varadhan lower bound (MINE, DIM eq. 2), a scalar in nats:

        E_joint[T] - log E_marginals[exp T]

    with the log-mean-exp over all negatives of the batch, computed stably (logsumexp)."""
    pos, neg, n_neg = _pos_neg(scores)
    return pos.mean() - (torch.logsumexp(neg.reshape(-1), 0) - math.log(n_neg))


def infonce_mi(scores: torch.Tensor) -> torch.Tensor:
    """infoNCE lower bound, a scalar in nats: for each positive (i, l), a softmax over it and the
    negatives of row i (all j != i, every location):

        log N + mean_{i,l} [ T_iil - log( exp T_iil + sum_{j != i, l'} exp T_ijl' ) ],

    N = 1 + (B - 1) L candidates.  It can never exceed log N (for a (B, B) matrix: log B)."""
    pos, neg, n_neg = _pos_neg(scores)
    b = pos.shape[0]
    neg_lse = torch.logsumexp(neg.reshape(b, -1), dim=1, keepdim=True)          # (B, 1)
    return (pos - torch.logaddexp(pos, neg_lse)).mean() + math.log(1 + n_neg // b)


class MIEstimator(NamedTuple):
    """An InfoMax estimator: everything the project knows about it, in one place."""

    estimate: Callable[[torch.Tensor], torch.Tensor]   # scores (B, B) or (B, B, L) -> a scalar in nats
    floor: float      # the least value of the quantity it targets, in nats: a constant critic attains it
    label: str        # its name in tables and figures


# The estimators, in plotting order.  A new one needs its function above, an entry here (tested
# against a closed form in tests/base/test_estimators.py) and its name in the schema's estimator_list.
# Floors: JSD -softplus(0) - softplus(0) = -2 log 2; DV T - log e^T = 0; infoNCE log N - log N = 0.
MI_ESTIMATORS = {"jsd": MIEstimator(jsd_mi, -2.0 * math.log(2.0), "JSD"),
                 "dv": MIEstimator(dv_mi, 0.0, "DV"),
                 "nce": MIEstimator(infonce_mi, 0.0, "infoNCE")}


def gaussian_log_density(y: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(y; mu, diag exp(logvar)) summed over the last dimension: (...)."""
    return -0.5 * ((y - mu).square() / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


def club_mi(mu: torch.Tensor, logvar: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CLUB upper bound on I(X; Y) (Cheng et al. 2020), a scalar in nats:

        E_joint[log q(y|x)] - E_x E_y[log q(y|x)]

    mu, logvar (B, D): the variational Gaussian q(y | x_i); y (B, D) with y_i paired with x_i.
    The second expectation uses every y_k of the batch for every x_i.  An upper bound when q is the
    true conditional (or close to it); the normalising terms cancel in the difference."""
    joint = gaussian_log_density(y, mu, logvar).mean()
    allpairs = gaussian_log_density(y.unsqueeze(0), mu.unsqueeze(1), logvar.unsqueeze(1))   # (B_x, B_y)
    return joint - allpairs.mean()
