"""Study B's evaluation: probes on a frozen encoder, and probe accuracy under input noise."""

from dataclasses import dataclass

import torch

from ..attacks import perturb
from ..data import stratified_part, to_unit
from ..probes import PROBES, chunks, probe_accuracy, train_probe
from .objectives import dim_input
from .runs import NOISE_ATTACK

LAYERS = ("y", "fc", "conv")
CHUNK = 1000                              # images per forward pass


@dataclass
class EvalConfig:
    """dim_infobal.evaluate of the config, and the run's seed: no defaults here."""

    layers: tuple                         # the layers probed, of LAYERS ("y" always: every claim reads it)
    linear_epochs: int                    # the post's probe: one linear layer
    linear_lr: float
    mlp_epochs: int                       # DIM's probe: hidden units, dropout
    mlp_lr: float
    mlp_hidden: int
    mlp_dropout: float
    batch_size: int
    gaussian: tuple
    test_images: int | None               # a fixed stratified part of the test set (None: all of it)
    seed: int

    def __post_init__(self):
        self.layers = tuple(self.layers)
        unknown = [k for k in self.layers if k not in LAYERS]
        if unknown or "y" not in self.layers:
            raise ValueError(f"layers {list(self.layers)}: expected some of {', '.join(LAYERS)}, y included")


@torch.no_grad()
def encoder_features(net, x, chunk: int = CHUNK, layers=LAYERS) -> dict[str, torch.Tensor]:
    """Frozen features of a study-B net (eval mode: BN uses its running statistics).

    x: uint8 images (N, C, H, W), or floats in [0, 1].  Returns {layer: (N, d)} for ``layers``
    of "y" (Y, or InfoBal's R), "fc", "conv" (flattened)."""
    was_training = net.training
    net.eval()
    parts = {k: [] for k in layers}
    for s in chunks(x.shape[0], chunk):
        out = net(dim_input(x[s]))
        for k in layers:
            parts[k].append(out[k].flatten(1))
    net.train(was_training)
    return {k: torch.cat(v) for k, v in parts.items()}



def evaluate(net, data, cfg: EvalConfig) -> dict:
    """Probes on each layer of ``cfg.layers`` (linear and MLP, trained on the train split, scored
    on test, or on its fixed stratified part of ``cfg.test_images``) and
    the linear probe on y under Gaussian input noise (clean probe, noisy test images in [0, 1]
    pixel units, clipped).  Returns {"probes": [{layer, probe, acc}], "robustness": [...]}."""
    device = next(net.parameters()).device
    (xtr, ytr), (xte, yte) = data.splits["train"], stratified_part(*data.splits["test"], cfg.test_images)
    f_tr, f_te = encoder_features(net, xtr, CHUNK, cfg.layers), encoder_features(net, xte, CHUNK, cfg.layers)
    probes, linear_y = [], None
    for layer in cfg.layers:
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
    for level in getattr(cfg, NOISE_ATTACK):    # level 0 is the clean test set: its features are already there
        f = f_te["y"] if level == 0 else encoder_features(net, perturb(x01, NOISE_ATTACK, float(level), gen),
                                                          CHUNK, ("y",))["y"]
        rob.append({"attack": NOISE_ATTACK, "level": float(level), "acc": probe_accuracy(linear_y, f, yte)})
    return {"probes": probes, "robustness": rob}
