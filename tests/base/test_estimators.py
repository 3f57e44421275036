"""Estimators against closed forms and numeric integrals."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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


# -----------------------------------------------------------------------------
# Study B: MI estimators on correlated Gaussians, where the MI and the optimal critic are known.
# x ~ N(0, I_d), y = rho x + sqrt(1 - rho^2) n: I(X;Y) = -d/2 log(1 - rho^2), and the optimal
# critic is the log density ratio T*(x, y) = log p(y|x) - log p(y).

from infomax.estimators import club_mi, dv_mi, infonce_mi, jsd_mi  # noqa: E402


def gaussian_pairs(n, d, rho, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = rho * x + math.sqrt(1 - rho**2) * torch.randn(n, d, generator=g, dtype=torch.float64)
    return x, y


def optimal_scores(x, y, rho):
    """[i, j] = T*(x_j, y_i): the log density ratio, summed over dimensions."""
    v = 1 - rho**2
    cond = -((y.unsqueeze(1) - rho * x.unsqueeze(0)) ** 2) / (2 * v) - 0.5 * math.log(v)
    marg = -(y.unsqueeze(1) ** 2) / 2
    return (cond - marg).sum(-1)


def true_mi(d, rho):
    return -0.5 * d * math.log(1 - rho**2)


@pytest.mark.parametrize("d,rho", [(1, 0.8), (2, 0.6)])
def test_dv_and_nce_with_the_optimal_critic_approach_the_true_mi(d, rho):
    truth = true_mi(d, rho)                                   # 0.51 and 0.45 nats
    dv, nce = [], []
    for seed in range(4):
        x, y = gaussian_pairs(1000, d, rho, seed)
        s = optimal_scores(x, y, rho)
        dv.append(dv_mi(s).item())
        nce.append(infonce_mi(s).item())
    assert np.mean(dv) == pytest.approx(truth, abs=0.05)
    assert np.mean(nce) == pytest.approx(truth, abs=0.05)
    # a critic that ignores the pairing (constant) knows nothing
    s0 = torch.zeros(1000, 1000, dtype=torch.float64)
    assert dv_mi(s0).item() == pytest.approx(0.0, abs=1e-9)
    assert infonce_mi(s0).item() == pytest.approx(0.0, abs=1e-9)


def test_nce_is_capped_at_log_batch_size():
    x, y = gaussian_pairs(128, 20, 0.999)
    truth = true_mi(20, 0.999)                               # 62 nats, far above log 128 = 4.85
    nce = infonce_mi(optimal_scores(x, y, 0.999)).item()
    assert nce <= math.log(128) + 1e-9
    assert nce > math.log(128) - 0.05
    assert truth > 10 * nce


def test_jsd_is_minus_a_balanced_binary_cross_entropy():
    g = torch.Generator().manual_seed(0)
    for shape in [(16, 16), (8, 8, 5)]:
        s = 3 * torch.randn(shape, generator=g, dtype=torch.float64)
        eye = torch.eye(shape[0], dtype=torch.bool)
        if len(shape) == 3:
            eye = eye.unsqueeze(-1).expand(shape)
        pos, neg = s[eye], s[~eye]
        bce = (F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
               + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg)))
        assert jsd_mi(s).item() == pytest.approx(-bce.item(), rel=1e-12)
    # a constant critic at chance: -2 log 2
    assert jsd_mi(torch.zeros(10, 10)).item() == pytest.approx(-2 * math.log(2), rel=1e-6)


def test_jsd_with_the_optimal_critic_beats_chance_and_grows_with_the_mi():
    vals = []
    for rho in (0.3, 0.6, 0.9):
        x, y = gaussian_pairs(500, 1, rho)
        vals.append(jsd_mi(optimal_scores(x, y, rho)).item())
    assert -2 * math.log(2) < vals[0] < vals[1] < vals[2] < 0


def brute_force(s):
    """DV and infoNCE written as plain loops over (i, l), negatives = every j != i at every location."""
    b, _, L = s.shape
    pos = [s[i, i, l] for i in range(b) for l in range(L)]
    neg = [s[i, j, l] for i in range(b) for j in range(b) if j != i for l in range(L)]
    dv = np.mean(pos) - math.log(np.mean(np.exp(neg)))
    nce = []
    for i in range(b):
        negs_i = [s[i, j, m] for j in range(b) if j != i for m in range(L)]
        for l in range(L):
            nce.append(s[i, i, l] - math.log(math.exp(s[i, i, l]) + np.sum(np.exp(negs_i))))
    return dv, np.mean(nce) + math.log(1 + (b - 1) * L)


def test_local_score_tensors_match_a_brute_force_loop():
    s = torch.randn(5, 5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    dv, nce = brute_force(s.numpy())
    assert dv_mi(s).item() == pytest.approx(dv, rel=1e-10)
    assert infonce_mi(s).item() == pytest.approx(nce, rel=1e-10)


@pytest.mark.parametrize("fn", [jsd_mi, dv_mi, infonce_mi])
@pytest.mark.parametrize("shape", [(12, 12), (6, 6, 4)])
def test_estimators_do_not_depend_on_the_batch_order(fn, shape):
    s = torch.randn(shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    p = torch.randperm(shape[0], generator=torch.Generator().manual_seed(3))
    assert fn(s[p][:, p]).item() == pytest.approx(fn(s).item(), rel=1e-12)
    # ... but they do depend on which pairs are positive
    q = torch.roll(torch.arange(shape[0]), 1)
    assert fn(s[:, q]).item() != pytest.approx(fn(s).item(), rel=1e-6)


def test_estimators_reject_non_square_scores():
    for fn in (jsd_mi, dv_mi, infonce_mi):
        with pytest.raises(ValueError, match="scores must be"):
            fn(torch.zeros(3, 4))
        with pytest.raises(ValueError, match="at least 2"):
            fn(torch.zeros(1, 1))


def test_club_with_the_true_conditional_is_an_upper_bound_with_its_closed_form():
    d, rho = 2, 0.6
    x, y = gaussian_pairs(3000, d, rho)
    mu = rho * x
    logvar = torch.full_like(x, math.log(1 - rho**2))
    club = club_mi(mu, logvar, y).item()
    # E_joint log q - E_x E_y log q = sum_d [-1/2 + (1 + rho^2) / (2 (1 - rho^2))] = d rho^2 / (1 - rho^2)
    assert club == pytest.approx(d * rho**2 / (1 - rho**2), abs=0.06)
    assert club > true_mi(d, rho)
    # independent pairs: CLUB is (close to) zero
    x2, y2 = gaussian_pairs(3000, d, 0.0, seed=5)
    assert club_mi(torch.zeros_like(x2), torch.zeros_like(x2), y2).item() == pytest.approx(0.0, abs=0.1)


@pytest.mark.parametrize("fn", [jsd_mi, dv_mi, infonce_mi])
@pytest.mark.parametrize("shape", [(5, 5), (4, 4, 3)])
def test_estimator_gradients_are_exact_and_finite(fn, shape):
    """Positives are masked with -inf inside: the gradient must still match finite differences
    and stay finite (no NaN from exp(-inf) or logsumexp)."""
    s = torch.randn(shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (s,))
    fn(s).backward()
    assert torch.isfinite(s.grad).all()
