"""Probes on frozen features, shared by both studies: logistic regression (L-BFGS), k-NN, and a
linear or small MLP probe trained with Adam (the InfoBal post's and DIM's probes)."""

import torch
import torch.nn.functional as F

PROBES = ("linear", "mlp")


def chunks(n, size):
    """Slices of ``range(n)`` of at most ``size`` (bounded memory on big splits)."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


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
    for s in chunks(f_test.shape[0], chunk):
        d = torch.cdist(f_test[s], f_train)
        idx = d.topk(k, largest=False).indices                          # (b, k), nearest first
        weight = 1.0 + 1e-3 * torch.arange(k, 0, -1, device=d.device)   # tie-break by rank only
        votes = torch.zeros(idx.shape[0], classes, device=d.device)
        votes.scatter_add_(1, y_train[idx], weight.expand_as(idx).contiguous())
        correct += (votes.argmax(-1) == y_test[s]).sum().item()
    return correct / f_test.shape[0]



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

