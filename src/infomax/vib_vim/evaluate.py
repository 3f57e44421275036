"""Study A's evaluation: errors, information-plane bounds, probes, robustness.

All on frozen EMA weights.  Errors use the mean softmax of S samples of z (err_S) or one sample
(err_1); the deterministic objective always predicts from z = mu.  Noise is seeded, so a rerun
gives the same numbers.  Robustness inputs live in [0, 1] pixel units and are mapped to the
model's [-1, 1] afterwards.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..attacks import ATTACKS, perturb
from ..data import flatten, stratified_part, to_signed, to_unit
from ..estimators import NATS_PER_BIT, gaussian_kl_to_standard
from ..probes import chunks, knn_accuracy, linear_probe

CHUNK = 2000                              # images per forward pass (bounds memory on big splits)


@dataclass
class EvalConfig:
    """vib_vim.evaluate of the config, and the run's seed (noise draws): no defaults here."""

    samples: int
    knn_k: int
    probe_l2: float
    probe_max_iter: int
    gaussian: tuple
    saltpepper: tuple
    fgsm: tuple
    robustness_images: int | None         # a fixed stratified part of the test set (None: all of it)
    seed: int


def predict_proba(model, x01: torch.Tensor, samples: int, stochastic: bool, gen=None) -> torch.Tensor:
    """Mean softmax over ``samples`` draws of z (or the mu path): (B, C).  Differentiable in x01."""
    mu, sigma = model.encode(to_signed(x01))
    if not stochastic:
        return F.softmax(model.decoder(mu), dim=-1)
    eps = torch.randn((samples, *mu.shape), device=mu.device, generator=gen)
    return F.softmax(model.decoder(mu + sigma * eps), dim=-1).mean(0)



@torch.no_grad()
def encode_all(model, x_uint8, chunk):
    mus, sigmas = zip(*(model.encode(to_signed(flatten(x_uint8[s]))) for s in chunks(x_uint8.shape[0], chunk)))
    return torch.cat(mus), torch.cat(sigmas)


@torch.no_grad()
def classification(model, x_uint8, y, samples, stochastic, gen, chunk) -> dict | None:
    """err_1, err_S, rate (bits) and I(Z;Y) >= log2(10) - CE (bits) on one split; None for an
    empty split (an experiment without validation: data.<set>.val_size 0)."""
    if x_uint8.shape[0] == 0:
        return None
    wrong1 = wrongS = 0
    ce_sum = kl_sum = 0.0
    for s in chunks(x_uint8.shape[0], chunk):
        mu, sigma = model.encode(to_signed(flatten(x_uint8[s])))
        ys = y[s]
        if stochastic:
            z = mu + sigma * torch.randn((samples, *mu.shape), device=mu.device, generator=gen)
        else:
            z = mu.unsqueeze(0)
        logp = F.log_softmax(model.decoder(z), dim=-1)                  # (S, B, C)
        wrong1 += (logp[0].argmax(-1) != ys).sum().item()
        wrongS += (logp.exp().mean(0).argmax(-1) != ys).sum().item()
        ce_sum += -logp.gather(-1, ys.expand(logp.shape[0], -1).unsqueeze(-1)).mean(0).sum().item()
        if stochastic:
            kl_sum += gaussian_kl_to_standard(mu, sigma).sum().item()
    n = x_uint8.shape[0]
    ce_bits = ce_sum / n / NATS_PER_BIT
    return {"err_1": wrong1 / n, "err_S": wrongS / n,
            "rate_bits": kl_sum / n / NATS_PER_BIT if stochastic else math.nan,
            "izy_bits": math.log2(10) - ce_bits}



def fgsm(model, x01, y, eps: float, samples: int, stochastic: bool, gen) -> torch.Tensor:
    """Fast gradient sign attack in [0, 1] pixel units on the model's S-sample prediction."""
    if eps == 0:
        return x01
    x = x01.clone().requires_grad_(True)
    with torch.enable_grad():
        p = predict_proba(model, x, samples, stochastic, gen)
        loss = F.nll_loss(p.clamp_min(1e-12).log(), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return (x01 + eps * grad.sign()).clamp_(0, 1).detach()


def robustness(model, x_uint8, y, cfg: EvalConfig, stochastic: bool, gen) -> list[dict]:
    """Accuracy under each attack and level.  Level 0 is the clean test set for every attack:
    it is scored once and shared, so the three curves start from the same point."""
    def accuracy(attack, level):
        correct = 0
        for s in chunks(x_uint8.shape[0], CHUNK):
            x01, ys = to_unit(flatten(x_uint8[s])), y[s]
            if attack == "fgsm":                      # the one gradient attack: study A's own code
                xa = fgsm(model, x01, ys, level, cfg.samples, stochastic, gen)
            else:
                xa = perturb(x01, attack, level, gen)
            with torch.no_grad():
                p = predict_proba(model, xa, cfg.samples, stochastic, gen)
            correct += (p.argmax(-1) == ys).sum().item()
        return correct / x_uint8.shape[0]

    clean = None
    rows = []
    for attack in ATTACKS:                        # every attack of the table: each a key of the evaluate block
        for level in getattr(cfg, attack):
            if level == 0:
                clean = accuracy(attack, 0.0) if clean is None else clean
                acc = clean
            else:
                acc = accuracy(attack, level)
            rows.append({"attack": attack, "level": float(level), "acc": acc})
    return rows


def evaluate(model, data, cfg: EvalConfig, objective: str, with_robustness=True,
             embedding_points: int = 1000) -> dict:
    """All study-A numbers for one model.  ``data`` is a Prepared (splits on the model's device).

    Returns {"test": {...}, "val": {...} (None without a validation split), "probe_acc", "knn_acc",
    "robustness": [...], "embedding"}.
    """
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    stochastic = objective != "deterministic"
    (xtr, ytr), (xva, yva), (xte, yte) = (data.splits[k] for k in ("train", "val", "test"))
    out = {"test": classification(model, xte, yte, cfg.samples, stochastic, gen, CHUNK),
           "val": classification(model, xva, yva, cfg.samples, stochastic, gen, CHUNK)}
    f_tr, _ = encode_all(model, xtr, CHUNK)
    f_te, s_te = encode_all(model, xte, CHUNK)
    out["probe_acc"] = linear_probe(f_tr, ytr, f_te, yte, cfg.probe_l2, cfg.probe_max_iter)
    out["knn_acc"] = knn_accuracy(f_tr, ytr, f_te, yte, cfg.knn_k)
    if with_robustness:
        out["robustness"] = robustness(model, *stratified_part(xte, yte, cfg.robustness_images), cfg, stochastic, gen)
    else:
        out["robustness"] = []
    if model.K == 2:
        m = min(embedding_points, xte.shape[0])
        out["embedding"] = {"mu": f_te[:m].cpu().numpy(), "sigma": s_te[:m].cpu().numpy(),
                            "y": yte[:m].cpu().numpy(),
                            "W": model.decoder.weight.detach().cpu().numpy(),
                            "b": model.decoder.bias.detach().cpu().numpy()}
    return out

