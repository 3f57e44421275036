"""Study A's objectives: deterministic, VIB and VIM, built from the pure estimators.

The losses take any leading dimensions: a batch (B, ...) of one model, or (M, B, ...) of a stacked
group of M models, each model getting its own terms (M,).  ``objective_loss`` is the one branch on
the objective; ``vib_vim_loss`` is the readable one-model forward pass the stacked trainer is
tested against.  No host sync: the caller decides when to read the terms.
"""

import torch
import torch.nn.functional as F

from ..estimators import gaussian_kl_to_standard, mmd2
from .runs import OBJECTIVES


def cross_entropy(logits, y):
    """The batch's mean cross-entropy: logits (..., B, C), y (..., B) -> (...)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none").view(y.shape).mean(-1)


def vib_loss(logits, y, mu, sigma, beta):
    """CE(y, q(y|z)) + beta * KL(N(mu, sigma^2) || N(0, I)).

    logits (..., B, C) decoded from one sample z per example; y (..., B); mu, sigma (..., B, K).
    KL summed over K, CE and KL averaged over the batch (Alemi et al.).  Returns (total, ce, kl)."""
    ce = cross_entropy(logits, y)
    kl = gaussian_kl_to_standard(mu, sigma).mean(-1)
    return ce + beta * kl, ce, kl


def vim_loss(logits, y, z, prior_z, beta, kernel: str = "imq", scales=(1.0,)):
    """CE(y, q(y|z)) + beta * MMD^2(q(z), N(0, I))   (VIM, reconstructed: see PROTOCOL.md).

    z (..., B, K): one posterior sample per example, so the batch is a sample of the aggregate
    posterior q(z); prior_z (..., B, K) ~ N(0, I).  Unlike VIB there is no per-example bound: only
    the code distribution as a whole is pulled to the prior.  Returns (total, ce, mmd2)."""
    ce = cross_entropy(logits, y)
    d = mmd2(z, prior_z, kernel, scales)
    return ce + beta * d, ce, d


def deterministic_loss(logits, y):
    """Plain cross-entropy on z = mu(x).  Returns (total, ce, 0)."""
    ce = cross_entropy(logits, y)
    return ce, ce, torch.zeros_like(ce)


def objective_loss(objective: str, decode, mu, sigma, y, beta, noise, prior, kernel="imq", scales=(1.0,)):
    """(total, ce, regulariser, logits) of ``objective`` for codes mu, sigma (..., B, K).

    ``decode``: codes -> logits; ``noise()`` draws eps ~ N(0, I) of mu's shape for z = mu + sigma * eps,
    ``prior()`` the prior sample of VIM (in that order: a seeded run draws the same numbers)."""
    if objective == "deterministic":
        logits = decode(mu)
        return (*deterministic_loss(logits, y), logits)
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}: expected one of {', '.join(OBJECTIVES)}")
    z = mu + sigma * noise()
    logits = decode(z)
    if objective == "vib":
        return (*vib_loss(logits, y, mu, sigma, beta), logits)
    return (*vim_loss(logits, y, z, prior(), beta, kernel, scales), logits)


def vib_vim_loss(model, x, y, objective: str, beta: float, kernel: str = "imq", scales=(1.0,),
                 with_accuracy: bool = False):
    """Forward pass of one ``model`` (a StochasticMLP) on x (B, 784), its noise from the global RNG,
    and the objective's (total, ce, regulariser); with ``with_accuracy`` the batch's accuracy of
    the decoded sample as a fourth tensor."""
    mu, sigma = (t.float() for t in model.encode(x))     # float32 even under bfloat16 autocast
    total, ce, reg, logits = objective_loss(objective, model.decoder, mu, sigma, y, beta,
                                            noise=lambda: torch.randn_like(mu), prior=lambda: torch.randn_like(mu),
                                            kernel=kernel, scales=scales)
    if with_accuracy:
        return total, ce, reg, (logits.detach().argmax(-1) == y).float().mean()
    return total, ce, reg
