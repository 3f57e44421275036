"""The attacks: every corruption a robustness evaluation may apply to test images, as one table,
and the random ones' code.  Both studies, the report's wording, the summary's plot tables and the
workflow read the table; a config's ``evaluate`` block lists levels under an attack's name.
Torch-free at import (the workflow and the config checks read the table).

An attack is ``random`` (noise drawn from the job's generator: ``perturb`` below) or a gradient
attack, which needs the model and lives with the study that can take its gradient (FGSM: study A's
evaluate module).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Attack:
    name: str          # the config key under <study>.evaluate and the `attack` column of robustness tables
    title: str         # a figure panel's title
    words: str         # in a sentence of the report
    level: str         # what its level is, as an axis label
    random: bool       # drawn noise (``perturb``) rather than a gradient attack


ATTACKS = {a.name: a for a in (
    Attack("gaussian", "Gaussian pixel noise", "Gaussian noise", "noise std σ (pixel units, images in [0, 1])", True),
    Attack("saltpepper", "Salt-and-pepper noise", "salt-and-pepper noise", "fraction of corrupted pixels p", True),
    Attack("fgsm", "FGSM adversarial attack", "FGSM", "L∞ budget ε (pixel units, images in [0, 1])", False),
)}


def perturb(x01, attack: str, level: float, gen):
    """Random corruption of images in [0, 1]: Gaussian noise (sigma) clipped to [0, 1], or
    salt-and-pepper (a fraction ``level`` of pixels set to 0 or 1 with equal odds)."""
    import torch

    if level == 0:
        return x01
    if attack == "gaussian":
        return (x01 + level * torch.randn(x01.shape, device=x01.device, generator=gen)).clamp_(0, 1)
    if attack == "saltpepper":
        u = torch.rand(x01.shape, device=x01.device, generator=gen)
        salt = torch.rand(x01.shape, device=x01.device, generator=gen) < 0.5
        return torch.where(u < level, salt.to(x01.dtype), x01)
    random = [a for a, spec in ATTACKS.items() if spec.random]
    raise ValueError(f"unknown random attack {attack!r}: expected one of {', '.join(random)}")
