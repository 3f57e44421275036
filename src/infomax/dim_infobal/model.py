"""Study B's networks: DIM's CIFAR-10 encoder and its critics, InfoBal's view encoders.

Encoder (Hjelm et al., exact): conv 4x4/2 64 -> conv 4x4/2 128 (local map C, 128x8x8) ->
conv 4x4/2 256 ("conv", 256x4x4) -> FC 1024 ("fc") -> linear 64 ("y"); BN + ReLU after every
hidden layer.  32x32 inputs in [-1, 1] (MNIST is padded from 28x28 by the caller).
"""

import torch
from torch import nn



def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class Trunk(nn.Module):
    """The first two conv layers: image (B, C, 32, 32) -> local feature map C (B, 128, 8, 8)."""

    def __init__(self, in_ch: int = 3):
        super().__init__()
        self.net = nn.Sequential(conv_bn_relu(in_ch, 64), conv_bn_relu(64, 128))

    def forward(self, x):
        return self.net(x)


class Tail(nn.Module):
    """conv 4x4/2 256 -> flatten -> FC ``fc_units`` -> linear ``out_dim``: DIM's encoder after the
    local map, and (one per view, on a band of the map) InfoBal's view encoder.

    forward returns {"conv": (B, 256, h/2, w/2), "fc": (B, fc_units), "y": (B, out_dim)}."""

    def __init__(self, c_in: int, hw: tuple[int, int], out_dim: int, fc_units: int = 1024):
        super().__init__()
        h, w = hw
        if h < 2 or w < 2:
            raise ValueError(f"a tail needs an input map of at least 2x2, got {h}x{w}")
        self.conv = conv_bn_relu(c_in, 256)
        self.fc = nn.Sequential(nn.Linear(256 * (h // 2) * (w // 2), fc_units, bias=False),
                                nn.BatchNorm1d(fc_units), nn.ReLU())
        self.out = nn.Linear(fc_units, out_dim)

    def forward(self, c):
        conv = self.conv(c)
        fc = self.fc(conv.flatten(1))
        return {"conv": conv, "fc": fc, "y": self.out(fc)}


class DIMEncoder(nn.Module):
    """DIM's encoder.  forward: x (B, C, 32, 32) -> {"local": C (B,128,8,8), "conv", "fc", "y" (B, 64)}."""

    def __init__(self, in_ch: int = 3, y_dim: int = 64, fc_units: int = 1024):
        super().__init__()
        self.trunk = Trunk(in_ch)
        self.tail = Tail(128, (8, 8), y_dim, fc_units)

    def forward(self, x):
        c = self.trunk(x)
        return {"local": c, **self.tail(c)}


class EncodeAndDot(nn.Module):
    """DIM's 1x1 "encode" network of the encode-and-dot critic, on feature vectors (..., n_in):

        LayerNorm( Linear(U) -> BN -> ReLU -> Linear(U)   +   linear shortcut n_in -> U )

    The shortcut starts as a noisy copy (identity plus U(-0.01, 0.01)), as in the official code.
    Applied to every location of the local map and to the global vector; score = dot product."""

    def __init__(self, n_in: int, units: int):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(n_in, units, bias=False), nn.BatchNorm1d(units), nn.ReLU(),
                                   nn.Linear(units, units))
        self.shortcut = nn.Linear(n_in, units, bias=False)
        with torch.no_grad():
            self.shortcut.weight.uniform_(-0.01, 0.01)
            k = min(n_in, units)
            self.shortcut.weight[torch.arange(k), torch.arange(k)] = 1.0
        self.norm = nn.LayerNorm(units)

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1])
        return self.norm(self.block(flat) + self.shortcut(flat)).reshape(*x.shape[:-1], -1)


def local_vectors(c: torch.Tensor) -> torch.Tensor:
    """Local map (B, C, H, W) -> one vector per location (B, H*W, C)."""
    return c.flatten(2).transpose(1, 2)


def dot_scores(g: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Encode-and-dot scores: g (B, U) global codes, l (B, L, U) local codes -> (B, B, L) with
    [i, j, l] = <g_i, l_j at location l>; positives on the diagonal i == j."""
    return torch.einsum("iu,jlu->ijl", g, l)


class ConcatCritic(nn.Module):
    """DIM(G)'s global critic T([a; b]) = MLP(a_dim + b_dim -> hidden -> hidden -> 1), scored for every
    pair of the batch at once.  The first layer is linear, so W [a_j; b_i] = W_a a_j + W_b b_i is
    computed per example and broadcast: B^2 pairs cost one layer less than B^2 concatenations.

    scores(a (B, a_dim), b (B, b_dim)) -> (B, B) with [i, j] = T(a_j, b_i)."""

    def __init__(self, a_dim: int, b_dim: int, hidden: int = 512):
        super().__init__()
        self.a = nn.Linear(a_dim, hidden)
        self.b = nn.Linear(b_dim, hidden, bias=False)
        self.rest = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, a, b):
        h = self.a(a).unsqueeze(0) + self.b(b).unsqueeze(1)                   # (B_b, B_a, hidden)
        return self.rest(h).squeeze(-1)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


class SeparableCritic(nn.Module):
    """T(a, b) = f(a) . h(b), with f, h small MLPs to ``units``: scores (B, B) for all pairs in one
    matrix product.  InfoBal's InfoMin discriminator between two views, and its R-vs-view critic."""

    def __init__(self, a_dim: int, b_dim: int, hidden: int, units: int):
        super().__init__()
        self.f = mlp([a_dim, hidden, units])
        self.h = mlp([b_dim, hidden, units])

    def forward(self, a, b):
        """-> (B, B) with [i, j] = T(a_i, b_j); positives on the diagonal."""
        return self.f(a) @ self.h(b).T


class GaussianConditional(nn.Module):
    """CLUB's variational q(b | a) = N(mu(a), diag exp(logvar(a))), logvar squashed by tanh (as in
    the CLUB code) so the bound cannot run away through a vanishing variance."""

    def __init__(self, a_dim: int, b_dim: int, hidden: int):
        super().__init__()
        self.mu = mlp([a_dim, hidden, b_dim])
        self.logvar = nn.Sequential(mlp([a_dim, hidden, b_dim]), nn.Tanh())

    def forward(self, a):
        return self.mu(a), self.logvar(a)


def band_slices(height: int, views: int) -> list[slice]:
    """InfoBal's views: ``views`` horizontal bands of equal height (top to bottom) of the local map."""
    if views < 2 or height % views or height // views < 2:
        raise ValueError(f"cannot split a local map of height {height} into {views} bands of >= 2 rows "
                         f"(expected views in {[m for m in range(2, height + 1) if height % m == 0 and height // m >= 2]})")
    h = height // views
    return [slice(i * h, (i + 1) * h) for i in range(views)]


class DIMNet(nn.Module):
    """Deep InfoMax: the encoder with the critics its weights switch on.

    global_weight > 0: the global critic on [flatten(conv); y] (DIM(G));
    local_weight > 0:  encode-and-dot networks for the local map and for y (DIM(L));
    prior_weight > 0:  the prior discriminator on sigmoid(y) vs U[0,1]^y_dim, the only adversary.
    With all three at 0 it is the bare encoder (the untrained `random` floor)."""

    def __init__(self, in_ch: int, global_weight: float, local_weight: float, prior_weight: float,
                 y_dim: int = 64, fc_units: int = 1024, local_units: int = 2048, global_hidden: int = 512,
                 prior_hidden=(1000, 200)):
        super().__init__()
        self.encoder = DIMEncoder(in_ch, y_dim, fc_units)
        self.global_critic = ConcatCritic(256 * 4 * 4, y_dim, global_hidden) if global_weight > 0 else None
        if local_weight > 0:
            self.local_x, self.local_y = EncodeAndDot(128, local_units), EncodeAndDot(y_dim, local_units)
        self.adversary = mlp([y_dim, *prior_hidden, 1]) if prior_weight > 0 else None

    def forward(self, x):
        return self.encoder(x)


class InfoBalNet(nn.Module):
    """InfoBal (reconstructed from the post's module list, PROTOCOL.md):

    trunk: DIM's first two conv layers -> local map C (B, 128, 8, 8);
    views: V_i = g_i(band i of C), ``views`` horizontal bands, g_i a copy of DIM's tail (conv 256,
           FC fc_units, linear view_dim);
    aggregator: R = linear([V_1; ...; V_M]) -> r_dim, the final representation;
    InfoMax critics: target "x": encode-and-dot between each V_i and every location of C (a DIM
           local estimator of I(X; V_i)); target "r" (global/local InfoBal): a separable critic per
           view between R and V_i;
    adversary: per pair i < j, an InfoMin discriminator (separable critic, infomin "adversary") or
           CLUB's variational q(v_j | v_i) (infomin "club")."""

    def __init__(self, in_ch: int, views: int = 2, view_dim: int = 64, fc_units: int = 1024, r_dim: int = 64,
                 local_units: int = 2048, target: str = "x", infomin: str = "adversary",
                 infomin_hidden: int = 512, infomin_units: int = 256):
        super().__init__()
        if target not in ("x", "r"):
            raise ValueError(f"InfoBal target {target!r}: expected 'x' (I(X;V_i)) or 'r' (I(R;V_i))")
        if infomin not in ("adversary", "club"):
            raise ValueError(f"InfoBal infomin {infomin!r}: expected 'adversary' or 'club'")
        self.target, self.infomin = target, infomin
        self.trunk = Trunk(in_ch)
        self.bands = band_slices(8, views)
        band_h = 8 // views
        self.views = nn.ModuleList(Tail(128, (band_h, 8), view_dim, fc_units) for _ in range(views))
        self.aggregate = nn.Linear(views * view_dim, r_dim)
        if target == "x":
            self.local_x = EncodeAndDot(128, local_units)
            self.view_codes = nn.ModuleList(EncodeAndDot(view_dim, local_units) for _ in range(views))
        else:
            self.r_critics = nn.ModuleList(SeparableCritic(r_dim, view_dim, infomin_hidden, infomin_units)
                                           for _ in range(views))
        self.pairs = [(i, j) for i in range(views) for j in range(i + 1, views)]
        if infomin == "adversary":
            self.adversary = nn.ModuleList(SeparableCritic(view_dim, view_dim, infomin_hidden, infomin_units)
                                           for _ in self.pairs)
        else:
            self.adversary = nn.ModuleList(GaussianConditional(view_dim, view_dim, infomin_hidden)
                                           for _ in self.pairs)

    def forward(self, x):
        """x (B, C, 32, 32) -> {"local": C, "views": [V_i (B, view_dim)], "conv": (B, 4096) views'
        conv maps side by side, "fc": (B, M * fc_units), "y": R (B, r_dim)}."""
        c = self.trunk(x)
        outs = [g(c[:, :, band]) for g, band in zip(self.views, self.bands)]
        views = [o["y"] for o in outs]
        return {"local": c, "views": views, "conv": torch.cat([o["conv"].flatten(1) for o in outs], 1),
                "fc": torch.cat([o["fc"] for o in outs], 1), "y": self.aggregate(torch.cat(views, 1))}
