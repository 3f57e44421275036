"""Losses against hand-computed values on small cases."""

import math

import pytest
import torch

from infomax.vib_vim.model import StochasticMLP
from infomax.vib_vim.objectives import deterministic_loss, vib_loss, vib_vim_loss, vim_loss


def test_vib_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    y = torch.tensor([0, 1])
    mu = torch.tensor([[1.0], [0.0]])
    sigma = torch.tensor([[1.0], [0.5]])
    ce = (math.log(1 + math.exp(-2.0)) + math.log(2.0)) / 2
    kl = (0.5 * 1.0 + 0.5 * (0.25 - 2 * math.log(0.5) - 1)) / 2
    total, got_ce, got_kl = vib_loss(logits, y, mu, sigma, beta=0.1)
    assert got_ce.item() == pytest.approx(ce)
    assert got_kl.item() == pytest.approx(kl)
    assert total.item() == pytest.approx(ce + 0.1 * kl)


def test_vim_loss_is_ce_plus_beta_mmd():
    logits = torch.tensor([[0.0, 0.0, 0.0]])
    y = torch.tensor([2])
    z = torch.tensor([[0.0], [1.0]])
    prior = torch.tensor([[0.0], [2.0]])
    k = lambda d2: 2.0 / (2.0 + d2)
    mmd = k(1.0) + k(4.0) - 2 * (k(0.0) + k(4.0) + 2 * k(1.0)) / 4
    total, ce, d = vim_loss(logits, y, z, prior, beta=3.0, kernel="imq", scales=(1.0,))
    assert ce.item() == pytest.approx(math.log(3))
    assert d.item() == pytest.approx(mmd)
    assert total.item() == pytest.approx(math.log(3) + 3.0 * mmd, rel=1e-5)


def test_deterministic_loss_has_no_regulariser():
    total, ce, reg = deterministic_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    assert total.item() == pytest.approx(math.log(1 + math.exp(-1)))
    assert reg.item() == 0


def test_beta_zero_vib_equals_cross_entropy_of_the_sample():
    torch.manual_seed(0)
    model = StochasticMLP(in_dim=6, hidden=8, K=3)
    x, y = torch.randn(5, 6), torch.randint(0, 10, (5,))
    torch.manual_seed(1)
    total, ce, kl = vib_vim_loss(model, x, y, "vib", 0.0)
    assert total.item() == pytest.approx(ce.item()) and kl.item() > 0


def test_deterministic_path_ignores_noise():
    model = StochasticMLP(in_dim=6, hidden=8, K=3)
    x, y = torch.randn(5, 6), torch.randint(0, 10, (5,))
    a = vib_vim_loss(model, x, y, "deterministic", 0.0)[0]
    b = vib_vim_loss(model, x, y, "deterministic", 0.0)[0]
    assert a.item() == b.item()


def test_initial_sigma_is_alemis_softplus_minus_five():
    model = StochasticMLP(in_dim=6, hidden=8, K=3)
    torch.nn.init.zeros_(model.encoder[-1].weight)
    _, sigma = model.encode(torch.randn(2, 6))
    assert sigma.flatten()[0].item() == pytest.approx(math.log1p(math.exp(-5.0)))


def test_unknown_objective_is_named():
    model = StochasticMLP(in_dim=6, hidden=8, K=3)
    with pytest.raises(ValueError, match="unknown objective 'vab'"):
        vib_vim_loss(model, torch.randn(2, 6), torch.tensor([0, 1]), "vab", 0.1)
