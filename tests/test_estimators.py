"""Estimators against closed forms and numeric integrals."""

import math

import numpy as np
import pytest
import torch

from infomax.estimators import gaussian_kl_to_standard, kernel_matrix, mmd2


def numeric_kl_1d(mu, sigma):
    """KL(N(mu, sigma^2) || N(0, 1)) by quadrature of p log(p/q) on a fine grid."""
    x = np.linspace(mu - 12 * sigma, mu + 12 * sigma, 200001)
    logp = -0.5 * ((x - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    logq = -0.5 * x**2 - 0.5 * np.log(2 * np.pi)
    return np.trapezoid(np.exp(logp) * (logp - logq), x)


@pytest.mark.parametrize("mu,sigma", [(0.0, 1.0), (1.5, 0.3), (-2.0, 2.5), (0.1, 0.0067)])
def test_gaussian_kl_matches_numeric_integral(mu, sigma):
    got = gaussian_kl_to_standard(torch.tensor([[mu]], dtype=torch.float64),
                                  torch.tensor([[sigma]], dtype=torch.float64)).item()
    assert got == pytest.approx(numeric_kl_1d(mu, sigma), rel=1e-5, abs=1e-8)


def test_gaussian_kl_sums_over_dimensions_per_example():
    mu = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    sigma = torch.tensor([[1.0, 1.0], [1.0, 0.5]])
    kl = gaussian_kl_to_standard(mu, sigma)
    by_hand = [0.5, 0.5 * 4 + 0.5 * (0.25 - 2 * math.log(0.5) - 1)]
    assert kl.shape == (2,)
    assert kl.tolist() == pytest.approx(by_hand)


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_mmd_near_zero_for_prior_samples_and_grows_with_mean_shift(kernel):
    g = torch.Generator().manual_seed(0)
    K, n = 16, 500
    scales = (0.1, 1.0, 10.0)
    prior = lambda: torch.randn(n, K, generator=g)
    same = torch.stack([mmd2(prior(), prior(), kernel, scales) for _ in range(5)])
    shifted = [mmd2(prior() + s, prior(), kernel, scales).item() for s in (0.25, 0.5, 1.0, 2.0)]
    assert same.abs().max() < 0.01
    assert shifted[0] > 5 * same.abs().max()
    assert all(a < b for a, b in zip(shifted, shifted[1:])), shifted


def test_mmd_unbiased_estimate_by_hand():
    # two points on each side, K=1, one imq scale: C = 2 * 1 * 1 = 2, k(d2) = 2 / (2 + d2)
    x = torch.tensor([[0.0], [1.0]])
    y = torch.tensor([[0.0], [2.0]])
    k = lambda d2: 2.0 / (2.0 + d2)
    kxx = k(1.0)                                  # off-diagonal pair (0,1)
    kyy = k(4.0)
    kxy = (k(0.0) + k(4.0) + k(1.0) + k(1.0)) / 4
    expected = kxx + kyy - 2 * kxy
    assert mmd2(x, y, "imq", (1.0,)).item() == pytest.approx(expected)


def test_kernel_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown MMD kernel 'laplace'"):
        kernel_matrix(torch.zeros(2, 2), 2, "laplace", (1.0,))
