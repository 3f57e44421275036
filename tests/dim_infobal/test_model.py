"""Study B networks and losses: shapes of DIM's encoder and InfoBal's views, critics against
explicit per-pair computations, and the DIM / InfoBal losses recomputed by hand."""

import math

import pytest
import torch

from infomax.data import pad_to
from infomax.estimators import club_mi, dv_mi, gaussian_log_density, jsd_mi
from infomax.dim_infobal.model import (
    ConcatCritic,
    DIMEncoder,
    DIMNet,
    EncodeAndDot,
    InfoBalNet,
    band_slices,
    dot_scores,
    local_vectors,
)
from infomax.dim_infobal.objectives import dim_input, dim_losses, infobal_losses


@pytest.mark.parametrize("in_ch", [1, 3])
def test_dim_encoder_layers_have_the_protocol_shapes(in_ch):
    out = DIMEncoder(in_ch).eval()(torch.randn(2, in_ch, 32, 32))
    assert out["local"].shape == (2, 128, 8, 8)
    assert out["conv"].shape == (2, 256, 4, 4)
    assert out["fc"].shape == (2, 1024)
    assert out["y"].shape == (2, 64)


@pytest.mark.parametrize("views,band_rows", [(2, 4), (4, 2)])
def test_infobal_views_are_horizontal_bands(views, band_rows):
    net = InfoBalNet(1, views=views, view_dim=8, fc_units=32, local_units=16, infomin_hidden=8, infomin_units=8).eval()
    assert [s.stop - s.start for s in net.bands] == [band_rows] * views
    out = net(torch.randn(3, 1, 32, 32))
    assert len(out["views"]) == views and out["views"][0].shape == (3, 8)
    assert out["conv"].shape == (3, 4096) and out["fc"].shape == (3, views * 32) and out["y"].shape == (3, 64)
    assert len(net.pairs) == views * (views - 1) // 2
    # view i sees only band i: changing the bottom rows of the local map leaves the top view alone
    c = torch.randn(3, 128, 8, 8)
    c2 = c.clone()
    c2[:, :, net.bands[-1]] += 1.0
    top = lambda c: net.views[0](c[:, :, net.bands[0]])["y"]
    assert torch.equal(top(c), top(c2))


@pytest.mark.parametrize("views", [3, 8, 1])
def test_band_counts_that_do_not_fit_are_refused(views):
    with pytest.raises(ValueError, match=f"into {views} bands"):
        band_slices(8, views)


def test_concat_critic_scores_every_pair_like_an_explicit_concatenation():
    torch.manual_seed(0)
    crit = ConcatCritic(5, 3, hidden=7)
    a, b = torch.randn(4, 5), torch.randn(4, 3)
    s = crit(a, b)
    W = crit.a.weight
    for i in range(4):
        for j in range(4):
            h = torch.cat([a[j], b[i]]) @ torch.cat([W, crit.b.weight], 1).T + crit.a.bias
            assert s[i, j].item() == pytest.approx(crit.rest(h).item(), abs=1e-5)


def test_encode_and_dot_shortcut_starts_as_a_noisy_identity_and_scores_are_dots():
    torch.manual_seed(0)
    e = EncodeAndDot(4, 6)
    w = e.shortcut.weight
    assert torch.equal(w[torch.arange(4), torch.arange(4)], torch.ones(4))
    off = w.clone()
    off[torch.arange(4), torch.arange(4)] = 0
    assert off.abs().max() <= 0.01
    g, l = torch.randn(3, 6), torch.randn(3, 5, 6)
    s = dot_scores(g, l)
    assert s.shape == (3, 3, 5) and s[1, 2, 4].item() == pytest.approx((g[1] * l[2, 4]).sum().item(), abs=1e-6)
    c = torch.randn(2, 4, 3, 3)
    assert torch.equal(local_vectors(c)[1, 5], c[1, :, 1, 2])


def test_mnist_is_padded_to_32_with_the_background_value():
    x = torch.full((2, 1, 28, 28), 255, dtype=torch.uint8)
    d = dim_input(x)
    assert d.shape == (2, 1, 32, 32)
    assert d[:, :, 2:30, 2:30].eq(1).all() and d[:, :, :2].eq(-1).all() and d[:, :, :, 30:].eq(-1).all()
    assert pad_to(torch.zeros(1, 3, 32, 32), 32, -1.0).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="cannot pad 40x40"):
        pad_to(torch.zeros(1, 1, 40, 40), 32, -1.0)


def test_dim_losses_recomputed_by_hand():
    torch.manual_seed(0)
    net = DIMNet(1, global_weight=0.5, local_weight=2.0, prior_weight=0.1, local_units=8, global_hidden=8,
                 prior_hidden=(8,))
    out = net(torch.randn(6, 1, 32, 32))
    prior_z = torch.rand(out["y"].shape, generator=torch.Generator().manual_seed(1))    # as train.draw_prior draws it
    loss, adv, mi = dim_losses(net, out, "jsd", 0.5, 2.0, 0.1, prior_z)
    y = out["y"]
    i_g = jsd_mi(net.global_critic(out["conv"].flatten(1), y))
    i_l = jsd_mi(dot_scores(net.local_y(y), net.local_x(local_vectors(out["local"]))))
    assert mi.item() == pytest.approx((0.5 * i_g + 2.0 * i_l).item(), rel=1e-5)
    fake = net.adversary(torch.sigmoid(y))
    expected = -(0.5 * i_g + 2.0 * i_l) + 0.1 * torch.nn.functional.softplus(-fake).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    prior = torch.rand(y.shape, generator=torch.Generator().manual_seed(1))
    d_loss = (torch.nn.functional.softplus(-net.adversary(prior)).mean()
              + torch.nn.functional.softplus(fake).mean())
    assert adv.item() == pytest.approx(d_loss.item(), rel=1e-5)
    # the adversary's loss is built on detached codes: it cannot move the encoder
    adv.backward()
    assert all(p.grad is None for p in net.encoder.parameters())
    assert any(p.grad is not None for p in net.adversary.parameters())


@pytest.mark.parametrize("target,infomin", [("x", "adversary"), ("r", "club")])
def test_infobal_loss_is_weighted_infomax_minus_lambda_weighted_infomin(target, infomin):
    torch.manual_seed(0)
    net = InfoBalNet(1, views=4, view_dim=4, fc_units=16, local_units=8, target=target, infomin=infomin,
                     infomin_hidden=8, infomin_units=4)
    out = net(torch.randn(5, 1, 32, 32))
    vw, pw, lam = [1.0, 2.0, 0.5, 0.0], [1.0, 0.5, 0.0, 2.0, 1.0, 0.25], 0.7
    loss, adv, mean_max, min_term = infobal_losses(net, out, "dv", lam, vw, pw)
    v = out["views"]
    if target == "x":
        local = net.local_x(local_vectors(out["local"]))
        imax = [dv_mi(dot_scores(net.view_codes[i](v[i]), local)) for i in range(4)]
    else:
        imax = [dv_mi(net.r_critics[i](out["y"], v[i])) for i in range(4)]
    if infomin == "adversary":
        imin = [dv_mi(d(v[i], v[j])) for (i, j), d in zip(net.pairs, net.adversary)]
    else:
        imin = [club_mi(*d(v[i]), v[j]) for (i, j), d in zip(net.pairs, net.adversary)]
    expected = -sum(w * t for w, t in zip(vw, imax)) + lam * sum(w * t for w, t in zip(pw, imin))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert mean_max.item() == pytest.approx(sum(t.item() for t in imax) / 4, rel=1e-5)
    assert min_term.item() == pytest.approx(sum(w * t for w, t in zip(pw, imin)).item(), rel=1e-5)
    if infomin == "club":   # q is fitted by maximum likelihood on detached views
        nll = -sum(gaussian_log_density(v[j], *d(v[i])).mean() for (i, j), d in zip(net.pairs, net.adversary))
        assert adv.item() == pytest.approx(nll.item(), rel=1e-5)
    adv.backward()
    assert all(p.grad is None for p in net.trunk.parameters())


def test_two_view_infobal_at_lambda_zero_is_plain_multiview_infomax():
    torch.manual_seed(0)
    net = InfoBalNet(1, views=2, view_dim=4, fc_units=16, local_units=8, infomin_hidden=8, infomin_units=4)
    out = net(torch.randn(5, 1, 32, 32))
    loss0, _, mean_max, _ = infobal_losses(net, out, "jsd", 0.0)
    assert loss0.item() == pytest.approx(-2 * mean_max.item(), rel=1e-6)
    assert math.isfinite(loss0.item())
