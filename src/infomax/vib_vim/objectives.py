"""Study A's objectives on the stochastic MLP: deterministic, VIB and VIM, built from the pure
estimators.  ``vib_vim_loss`` does the forward pass and returns the total loss with its two terms
as tensors (no host sync: the caller decides when to read them).
"""

import torch
import torch.nn.functional as F

from ..estimators import gaussian_kl_to_standard, mmd2

OBJECTIVES = ("deterministic", "vib", "vim")


def vib_loss(logits, y, mu, sigma, beta: float):
    """CE(y, q(y|z)) + beta * KL(N(mu, sigma^2) || N(0, I)).

    logits (B, C) decoded from one sample z per example; y (B,); mu, sigma (B, K).
    KL summed over K, CE and KL averaged over the batch (Alemi et al.).  Returns (total, ce, kl).
    """
    ce = F.cross_entropy(logits, y)
    kl = gaussian_kl_to_standard(mu, sigma).mean()
    return ce + beta * kl, ce, kl


def vim_loss(logits, y, z, prior_z, beta: float, kernel: str = "imq", scales=(1.0,)):
    """CE(y, q(y|z)) + beta * MMD^2(q(z), N(0, I))   (VIM, reconstructed: see PROTOCOL.md).

    z (B, K): one posterior sample per example, so the batch is a sample of the aggregate
    posterior q(z); prior_z (B, K) ~ N(0, I).  Unlike VIB there is no per-example bound: only the
    code distribution as a whole is pulled to the prior.  Returns (total, ce, mmd2).
    """
    ce = F.cross_entropy(logits, y)
    d = mmd2(z, prior_z, kernel, scales)
    return ce + beta * d, ce, d


def deterministic_loss(logits, y):
    """Plain cross-entropy on z = mu(x).  Returns (total, ce, 0)."""
    ce = F.cross_entropy(logits, y)
    return ce, ce, torch.zeros_like(ce)


def vib_vim_loss(model, x, y, objective: str, beta: float, kernel: str = "imq", scales=(1.0,),
                 with_accuracy: bool = False):
    """Forward pass of ``model`` (a StochasticMLP) on x (B, 784) and the objective's loss:
    (total, ce, regulariser), and with ``with_accuracy`` the batch's accuracy of the decoded sample
    as a fourth tensor (on the device: the training loop's divergence guard reads it)."""
    mu, sigma = (t.float() for t in model.encode(x))     # float32 even under bfloat16 autocast
    if objective == "deterministic":
        logits = model.decoder(mu)
        terms = deterministic_loss(logits, y)
    else:
        z = model.sample(mu, sigma)[0]
        logits = model.decoder(z)
        if objective == "vib":
            terms = vib_loss(logits, y, mu, sigma, beta)
        elif objective == "vim":
            terms = vim_loss(logits, y, z, torch.randn_like(z), beta, kernel, scales)
        else:
            raise ValueError(f"unknown objective {objective!r}: expected one of {', '.join(OBJECTIVES)}")
    if with_accuracy:
        return (*terms, (logits.detach().argmax(1) == y).float().mean())
    return terms
