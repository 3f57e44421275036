"""Evaluation of study-A models: errors, information-plane bounds, probes, robustness.

All on frozen EMA weights.  Errors use the mean softmax of S samples of z (err_S) or one sample
(err_1); the deterministic objective always predicts from z = mu.  Noise is seeded, so a rerun
gives the same numbers.  Robustness inputs live in [0, 1] pixel units and are mapped to the
model's [-1, 1] afterwards.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .data import flatten, to_signed, to_unit
from .estimators import NATS_PER_BIT, gaussian_kl_to_standard

ATTACKS = ("gaussian", "saltpepper", "fgsm")


@dataclass
class VibVimEvalConfig:
    samples: int = 12
    knn_k: int = 5
    probe_l2: float = 1e-4
    probe_max_iter: int = 200
    gaussian: tuple = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
    saltpepper: tuple = (0.0, 0.05, 0.1, 0.2, 0.3)
    fgsm: tuple = (0.0, 0.05, 0.1, 0.2, 0.3)
    seed: int = 0
    chunk: int = 2000                     # images per forward pass (bounds memory on big splits)


def predict_proba(model, x01: torch.Tensor, samples: int, stochastic: bool, gen=None) -> torch.Tensor:
    """Mean softmax over ``samples`` draws of z (or the mu path): (B, C).  Differentiable in x01."""
    mu, sigma = model.encode(to_signed(x01))
    if not stochastic:
        return F.softmax(model.decoder(mu), dim=-1)
    eps = torch.randn((samples, *mu.shape), device=mu.device, generator=gen)
    return F.softmax(model.decoder(mu + sigma * eps), dim=-1).mean(0)


def _chunks(n, size):
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


@torch.no_grad()
def encode_all(model, x_uint8, chunk):
    mus, sigmas = zip(*(model.encode(to_signed(flatten(x_uint8[s]))) for s in _chunks(x_uint8.shape[0], chunk)))
    return torch.cat(mus), torch.cat(sigmas)


@torch.no_grad()
def classification(model, x_uint8, y, samples, stochastic, gen, chunk) -> dict:
    """err_1, err_S, rate (bits) and I(Z;Y) >= log2(10) - CE (bits) on one split."""
    wrong1 = wrongS = 0
    ce_sum = kl_sum = 0.0
    for s in _chunks(x_uint8.shape[0], chunk):
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


def linear_probe(f_train, y_train, f_test, y_test, l2: float, max_iter: int, classes: int = 10) -> float:
    """Multinomial logistic regression on standardised frozen features, full-batch L-BFGS.

    Minimises mean CE + l2/2 ||W||^2 on the train features; returns test accuracy."""
    mean, std = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    a, b = (f_train - mean) / std, (f_test - mean) / std
    W = torch.zeros(a.shape[1], classes, device=a.device, requires_grad=True)
    c = torch.zeros(classes, device=a.device, requires_grad=True)
    opt = torch.optim.LBFGS([W, c], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-6, tolerance_change=1e-9, history_size=20)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(a @ W + c, y_train) + 0.5 * l2 * W.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        return ((b @ W + c).argmax(-1) == y_test).float().mean().item()


@torch.no_grad()
def knn_accuracy(f_train, y_train, f_test, y_test, k: int, classes: int = 10, chunk: int = 1000) -> float:
    """k-nearest-neighbour (Euclidean) accuracy; ties go to the class of the nearer neighbours."""
    correct = 0
    for s in _chunks(f_test.shape[0], chunk):
        d = torch.cdist(f_test[s], f_train)
        idx = d.topk(k, largest=False).indices                          # (b, k), nearest first
        weight = 1.0 + 1e-3 * torch.arange(k, 0, -1, device=d.device)   # tie-break by rank only
        votes = torch.zeros(idx.shape[0], classes, device=d.device)
        votes.scatter_add_(1, y_train[idx], weight.expand_as(idx).contiguous())
        correct += (votes.argmax(-1) == y_test[s]).sum().item()
    return correct / f_test.shape[0]


def perturb(x01: torch.Tensor, attack: str, level: float, gen) -> torch.Tensor:
    """Random corruption of images in [0, 1]: Gaussian noise (sigma) clipped to [0, 1], or
    salt-and-pepper (a fraction ``level`` of pixels set to 0 or 1 with equal odds)."""
    if level == 0:
        return x01
    if attack == "gaussian":
        return (x01 + level * torch.randn(x01.shape, device=x01.device, generator=gen)).clamp_(0, 1)
    if attack == "saltpepper":
        u = torch.rand(x01.shape, device=x01.device, generator=gen)
        salt = torch.rand(x01.shape, device=x01.device, generator=gen) < 0.5
        return torch.where(u < level, salt.to(x01.dtype), x01)
    raise ValueError(f"unknown random attack {attack!r}: expected gaussian or saltpepper")


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


def robustness(model, x_uint8, y, cfg: VibVimEvalConfig, stochastic: bool, gen) -> list[dict]:
    """Accuracy under each attack and level.  Level 0 is the clean test set for every attack:
    it is scored once and shared, so the three curves start from the same point."""
    def accuracy(attack, level):
        correct = 0
        for s in _chunks(x_uint8.shape[0], cfg.chunk):
            x01, ys = to_unit(flatten(x_uint8[s])), y[s]
            if attack == "fgsm":
                xa = fgsm(model, x01, ys, level, cfg.samples, stochastic, gen)
            else:
                xa = perturb(x01, attack, level, gen)
            with torch.no_grad():
                p = predict_proba(model, xa, cfg.samples, stochastic, gen)
            correct += (p.argmax(-1) == ys).sum().item()
        return correct / x_uint8.shape[0]

    clean = None
    rows = []
    for attack in ATTACKS:
        for level in getattr(cfg, attack):
            if level == 0:
                clean = accuracy("gaussian", 0.0) if clean is None else clean
                acc = clean
            else:
                acc = accuracy(attack, level)
            rows.append({"attack": attack, "level": float(level), "acc": acc})
    return rows


def evaluate_vib_vim(model, data, cfg: VibVimEvalConfig, objective: str, with_robustness=True,
                     embedding_points: int = 1000) -> dict:
    """All study-A numbers for one model.  ``data`` is a Prepared (splits on the model's device).

    Returns {"test": {...}, "val": {...}, "probe_acc", "knn_acc", "robustness": [...], "embedding"}.
    """
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    stochastic = objective != "deterministic"
    (xtr, ytr), (xva, yva), (xte, yte) = (data.splits[k] for k in ("train", "val", "test"))
    out = {"test": classification(model, xte, yte, cfg.samples, stochastic, gen, cfg.chunk),
           "val": classification(model, xva, yva, cfg.samples, stochastic, gen, cfg.chunk)}
    f_tr, _ = encode_all(model, xtr, cfg.chunk)
    f_te, s_te = encode_all(model, xte, cfg.chunk)
    out["probe_acc"] = linear_probe(f_tr, ytr, f_te, yte, cfg.probe_l2, cfg.probe_max_iter)
    out["knn_acc"] = knn_accuracy(f_tr, ytr, f_te, yte, cfg.knn_k)
    out["robustness"] = robustness(model, xte, yte, cfg, stochastic, gen) if with_robustness else []
    if model.K == 2:
        m = min(embedding_points, xte.shape[0])
        out["embedding"] = {"mu": f_te[:m].cpu().numpy(), "sigma": s_te[:m].cpu().numpy(),
                            "y": yte[:m].cpu().numpy(),
                            "W": model.decoder.weight.detach().cpu().numpy(),
                            "b": model.decoder.bias.detach().cpu().numpy()}
    return out


# -----------------------------------------------------------------------------
# Study B: probes on a frozen encoder, and probe accuracy under input noise.

LAYERS = ("y", "fc", "conv")
PROBES = ("linear", "mlp")


@dataclass
class InfoBalEvalConfig:
    linear_epochs: int = 4                # the post's probe: one linear layer, 4 epochs
    linear_lr: float = 1e-3
    mlp_epochs: int = 20                  # DIM's probe: 200 hidden units, dropout 0.1
    mlp_lr: float = 1e-3
    mlp_hidden: int = 200
    mlp_dropout: float = 0.1
    batch_size: int = 64
    gaussian: tuple = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
    seed: int = 0
    chunk: int = 1000                     # images per forward pass


@torch.no_grad()
def encoder_features(net, x, chunk: int = 1000, layers=LAYERS) -> dict[str, torch.Tensor]:
    """Frozen features of a study-B net (eval mode: BN uses its running statistics).

    x: uint8 images (N, C, H, W), or floats in [0, 1].  Returns {layer: (N, d)} for ``layers``
    of "y" (Y, or InfoBal's R), "fc", "conv" (flattened)."""
    from .objectives import dim_input

    was_training = net.training
    net.eval()
    parts = {k: [] for k in layers}
    for s in _chunks(x.shape[0], chunk):
        out = net(dim_input(x[s]))
        for k in layers:
            parts[k].append(out[k].flatten(1))
    net.train(was_training)
    return {k: torch.cat(v) for k, v in parts.items()}


def train_probe(f_train, y_train, kind: str, epochs: int, lr: float, batch_size: int, seed: int,
                hidden: int = 200, dropout: float = 0.1, classes: int = 10):
    """Fit a probe on frozen features (Adam, minibatches; features standardised with the train
    statistics).  kind "linear": one linear layer (the InfoBal post's probe); "mlp": DIM's probe,
    Linear(hidden) -> Dropout -> BN -> ReLU -> Linear.  Returns predict(features) -> logits.

    Seeded and self-contained: the caller's global RNG state is left as it was."""
    if kind not in PROBES:
        raise ValueError(f"unknown probe {kind!r}: expected one of {', '.join(PROBES)}")
    device = f_train.device
    mean, std = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    a = (f_train - mean) / std
    n, d = a.shape
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        if kind == "linear":
            net = torch.nn.Linear(d, classes)
        else:
            net = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.Dropout(dropout),
                                      torch.nn.BatchNorm1d(hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes))
        net = net.to(device)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        gen = torch.Generator(device=device).manual_seed(seed)
        with torch.enable_grad():
            for _ in range(epochs):
                perm = torch.randperm(n, device=device, generator=gen)
                for i in range(0, n - 1, batch_size):          # a last batch of 1 would break BN
                    idx = perm[i:i + batch_size]
                    if idx.numel() < 2:
                        continue
                    loss = F.cross_entropy(net(a[idx]), y_train[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
    net.eval()

    @torch.no_grad()
    def predict(f):
        return net((f - mean) / std)

    return predict


def probe_accuracy(predict, f, y) -> float:
    return (predict(f).argmax(-1) == y).float().mean().item()


def evaluate_infobal(net, data, cfg: InfoBalEvalConfig) -> dict:
    """Probes on every layer (linear and MLP, trained on the train split, scored on test) and
    the linear probe on y under Gaussian input noise (clean probe, noisy test images in [0, 1]
    pixel units, clipped).  Returns {"probes": [{layer, probe, acc}], "robustness": [...]}."""
    device = next(net.parameters()).device
    (xtr, ytr), (xte, yte) = data.splits["train"], data.splits["test"]
    f_tr, f_te = encoder_features(net, xtr, cfg.chunk), encoder_features(net, xte, cfg.chunk)
    probes, linear_y = [], None
    for layer in LAYERS:
        for kind in PROBES:
            epochs, lr = (cfg.linear_epochs, cfg.linear_lr) if kind == "linear" else (cfg.mlp_epochs, cfg.mlp_lr)
            predict = train_probe(f_tr[layer], ytr, kind, epochs, lr, cfg.batch_size, cfg.seed,
                                  cfg.mlp_hidden, cfg.mlp_dropout, data.classes)
            probes.append({"layer": layer, "probe": kind, "acc": probe_accuracy(predict, f_te[layer], yte)})
            if (layer, kind) == ("y", "linear"):
                linear_y = predict
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    x01 = to_unit(xte)
    rob = []
    for level in cfg.gaussian:    # level 0 is the clean test set: its features are already there
        f = f_te["y"] if level == 0 else encoder_features(net, perturb(x01, "gaussian", float(level), gen),
                                                          cfg.chunk, ("y",))["y"]
        rob.append({"attack": "gaussian", "level": float(level), "acc": probe_accuracy(linear_y, f, yte)})
    return {"probes": probes, "robustness": rob}
