"""Study B's objectives: DIM (global / local, with prior matching) and InfoBal, built from the
pure estimators.  Each returns the encoder's loss, the adversary's loss (computed on detached
features, so it trains only the adversary) and the InfoMax estimate as tensors.
"""

import torch
import torch.nn.functional as F

from ..data import pad_to, to_signed
from ..estimators import MI_ESTIMATORS, club_mi, gaussian_log_density
from .model import dot_scores, local_vectors



def dim_input(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 images (B, C, H, W) -> the conv encoder's input: [-1, 1], padded to 32x32 with -1."""
    return pad_to(to_signed(x_uint8), 32, -1.0)


def estimator_fn(name: str):
    """The estimator ``name`` on critic scores taken to float32 (under bfloat16 autocast the critics'
    matmuls give bfloat16 scores; the estimators' log-sum-exps and means run in float32)."""
    try:
        fn = MI_ESTIMATORS[name].estimate
    except KeyError:
        raise ValueError(f"unknown MI estimator {name!r}: expected one of {', '.join(MI_ESTIMATORS)}") from None
    return lambda scores: fn(scores.float())


def dim_losses(net, out: dict, estimator: str, global_weight: float, local_weight: float, prior_weight: float,
               prior=None):
    """Deep InfoMax (Hjelm et al.): maximise global_weight * I_G + local_weight * I_L, and match
    sigmoid(y) to U[0,1]^d adversarially with weight prior_weight.

    out: the encoder's outputs on a batch (B >= 2).  I_G scores [flatten(conv); y] pairs with the
    global critic, I_L every (y, location of C) pair with encode-and-dot; ``estimator`` turns the
    (B, B[, L]) scores into an MI estimate.  ``prior``: the batch's sample of U[0,1]^d for the prior
    discriminator (``prior_sample``, drawn before the forward pass so that a compiled forward holds
    no random draw; None: drawn here from the global RNG).  Returns (encoder loss, adversary loss,
    InfoMax estimate).
    """
    est = estimator_fn(estimator)
    y = out["y"]
    mi = y.new_zeros(())
    if global_weight > 0:
        mi = mi + global_weight * est(net.global_critic(out["conv"].flatten(1), y))
    if local_weight > 0:
        mi = mi + local_weight * est(dot_scores(net.local_y(y), net.local_x(local_vectors(out["local"]))))
    loss = -mi
    adv = y.new_zeros(())
    if prior_weight > 0:
        # non-saturating generator loss against the prior discriminator; the discriminator's own
        # loss is the BCE of "prior sample" vs "sigmoid(y)" on detached codes.
        fake = torch.sigmoid(y)
        loss = loss + prior_weight * F.softplus(-net.adversary(fake).float()).mean()
        if prior is None:
            prior = torch.rand(y.shape, device=y.device)
        adv = F.softplus(-net.adversary(prior).float()).mean() + F.softplus(net.adversary(fake.detach()).float()).mean()
    return loss, adv, mi


def prior_sample(batch: int, y_dim: int, device, gen) -> torch.Tensor:
    """DIM's prior-matching sample, U[0,1]^(batch, y_dim), from ``gen``."""
    return torch.rand((batch, y_dim), device=device, generator=gen)


def infobal_losses(net, out: dict, estimator: str, lam: float, view_weights=None, pair_weights=None):
    """InfoBal (reconstructed): maximise sum_i w_i I(X; V_i) - lam * sum_{i<j} w_ij I(V_i; V_j).

    I(X; V_i): a DIM local estimate between V_i and every location of the local map (target "x"),
    or between R and V_i (target "r", global/local InfoBal).  I(V_i; V_j): the InfoMin adversary's
    estimate (its critic is trained to maximise the same estimator on joint vs shuffled pairs of
    the batch; the encoder minimises it) or CLUB's upper bound (its q(v_j | v_i) is fitted by
    maximum likelihood).  Weights default to 1.  Returns (encoder loss, adversary loss, mean over
    views of the I(X; V_i) estimates, the InfoMin term sum_{i<j} w_ij I(V_i; V_j))."""
    est = estimator_fn(estimator)
    views = out["views"]
    m = len(views)
    vw = view_weights or [1.0] * m
    pw = pair_weights or [1.0] * len(net.pairs)
    if net.target == "x":
        local = net.local_x(local_vectors(out["local"]))
        infomax = [est(dot_scores(code(v), local)) for code, v in zip(net.view_codes, views)]
    else:
        infomax = [est(critic(out["y"], v)) for critic, v in zip(net.r_critics, views)]
    infomin, adv = [], views[0].new_zeros(())
    for (i, j), d in zip(net.pairs, net.adversary):
        vi, vj = views[i], views[j]
        if net.infomin == "adversary":
            infomin.append(est(d(vi, vj)))
            adv = adv - est(d(vi.detach(), vj.detach()))
        else:
            infomin.append(club_mi(*(t.float() for t in d(vi)), vj.float()))
            adv = adv - gaussian_log_density(vj.detach().float(), *(t.float() for t in d(vi.detach()))).mean()
    max_term = sum(w * v for w, v in zip(vw, infomax))
    min_term = sum(w * v for w, v in zip(pw, infomin))
    return -max_term + lam * min_term, adv, torch.stack(infomax).mean(), min_term
