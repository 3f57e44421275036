"""Evaluation pieces on hand-made inputs whose answers are known."""

import math

import pytest
import torch

from infomax.attacks import perturb
from infomax.probes import knn_accuracy, linear_probe
from infomax.vib_vim.evaluate import classification, evaluate, fgsm
from infomax.vib_vim.model import StochasticMLP

from configs import eval_a


def blobs(n, K=5, sep=6.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    centres = torch.randn(10, K, generator=g) * sep
    return centres[y] + torch.randn(n, K, generator=g), y


def test_knn_on_separated_clusters_and_by_hand():
    f, y = blobs(400)
    assert knn_accuracy(f[:300], y[:300], f[300:], y[300:], k=5) == 1.0
    # by hand: 1-D, neighbours of 0.1 are 0 (class 1), 0.3 (class 2), 1.0 (class 2) -> class 2 wins 2:1
    tr = torch.tensor([[0.0], [0.3], [1.0], [5.0]])
    assert knn_accuracy(tr, torch.tensor([1, 2, 2, 1]), torch.tensor([[0.1]]), torch.tensor([2]), k=3) == 1.0
    # a 1:1 tie at k=2 goes to the nearer neighbour (class 1 at distance 0.1)
    assert knn_accuracy(tr, torch.tensor([1, 2, 2, 1]), torch.tensor([[0.1]]), torch.tensor([1]), k=2) == 1.0


def test_linear_probe_separable_vs_random_labels():
    f, y = blobs(600)
    assert linear_probe(f[:400], y[:400], f[400:], y[400:], l2=1e-4, max_iter=100) > 0.97
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(600, 5, generator=g)
    acc = linear_probe(noise[:400], y[:400], noise[400:], y[400:], l2=1e-4, max_iter=100)
    assert acc < 0.25                                       # chance is 0.1


def test_perturbations_stay_in_range_and_hit_their_rate():
    g = torch.Generator().manual_seed(0)
    x = torch.full((50, 784), 0.5)
    assert torch.equal(perturb(x, "gaussian", 0.0, g), x)
    xg = perturb(x, "gaussian", 1.0, g)
    assert xg.min() >= 0 and xg.max() <= 1 and (xg == 0).any() and (xg == 1).any()
    xs = perturb(x, "saltpepper", 0.2, g)
    changed = (xs != 0.5).float().mean().item()
    assert changed == pytest.approx(0.2, abs=0.01)
    assert set(xs.unique().tolist()) == {0.0, 0.5, 1.0}
    with pytest.raises(ValueError, match="unknown random attack 'blur'"):
        perturb(x, "blur", 0.1, g)


def _fit(model, x01, y, steps=200):
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x01 * 2 - 1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_fgsm_moves_by_epsilon_and_hurts_accuracy():
    torch.manual_seed(0)
    f, y = blobs(200, K=20, sep=0.3)
    x01 = torch.sigmoid(f)
    model = _fit(StochasticMLP(in_dim=20, hidden=32, K=8), x01, y)
    g = torch.Generator().manual_seed(0)
    xa = fgsm(model, x01, y, 0.05, samples=1, stochastic=False, gen=g)
    inside = (x01 > 0.05) & (x01 < 0.95)
    assert torch.allclose((xa - x01).abs()[inside], torch.tensor(0.05), atol=1e-6)
    acc = lambda x: (model(x * 2 - 1).argmax(-1) == y).float().mean().item()
    assert acc(xa) < acc(x01) - 0.2


def test_classification_bounds_for_a_uniform_decoder():
    model = StochasticMLP(in_dim=784, hidden=16, K=3).eval()
    torch.nn.init.zeros_(model.decoder.weight)              # q(y|z) uniform -> CE = log 10
    x = torch.randint(0, 256, (30, 1, 28, 28), dtype=torch.uint8)
    y = torch.arange(30) % 10
    g = torch.Generator().manual_seed(0)
    r = classification(model, x, y, samples=12, stochastic=True, gen=g, chunk=7)
    assert r["izy_bits"] == pytest.approx(0.0, abs=1e-5)
    assert r["rate_bits"] > 0
    d = classification(model, x, y, samples=12, stochastic=False, gen=g, chunk=7)
    assert math.isnan(d["rate_bits"]) and d["err_1"] == d["err_S"]


def test_evaluate_vib_vim_end_to_end_on_real_digits(tiny_data):
    from infomax.data import load_prepared

    data = load_prepared(tiny_data)
    model = StochasticMLP(K=2).eval()
    cfg = eval_a(gaussian=(0.0, 0.5), saltpepper=(0.0,), fgsm=(0.0, 0.1), probe_max_iter=20)
    r = evaluate(model, data, cfg, "vib")
    assert {row["attack"] for row in r["robustness"]} == {"gaussian", "saltpepper", "fgsm"}
    assert len(r["robustness"]) == 5
    clean = [row["acc"] for row in r["robustness"] if row["level"] == 0.0]
    assert max(clean) - min(clean) <= 0.2                   # same images, different noise draws only
    assert len(clean) == 3 and len(set(clean)) == 1         # in fact one clean score, shared by every attack
    assert r["embedding"]["mu"].shape == (len(data.splits["test"][1]), 2)
    assert 0 <= r["probe_acc"] <= 1 and 0 <= r["knn_acc"] <= 1


def test_robustness_on_a_fixed_part_of_the_test_set(tiny_data):
    """robustness_images=n: every attack is scored on data.stratified_part's n test images (the
    clean level equals the deterministic model's accuracy on exactly those); the rest of the
    evaluation keeps the whole test set."""
    from infomax.data import flatten, load_prepared, stratified_part, to_signed

    data = load_prepared(tiny_data)
    torch.manual_seed(0)
    model = StochasticMLP(K=4).eval()
    whole = evaluate(model, data, eval_a(gaussian=(0.0,), saltpepper=(0.0,), fgsm=(0.0,), probe_max_iter=5,
                                         robustness_images=None), "deterministic")
    part = evaluate(model, data, eval_a(gaussian=(0.0,), saltpepper=(0.0,), fgsm=(0.0,), probe_max_iter=5,
                                        robustness_images=20), "deterministic")
    x, y = stratified_part(*data.splits["test"], 20)
    assert len(y) == 20 and torch.bincount(y, minlength=10).tolist() == [2] * 10
    with torch.no_grad():
        acc = (model.decoder(model.encode(to_signed(flatten(x)))[0]).argmax(-1) == y).float().mean().item()
    assert part["robustness"][0]["acc"] == pytest.approx(acc)
    assert part["test"] == whole["test"] and part["knn_acc"] == whole["knn_acc"]
    xt, yt = data.splits["test"]
    with torch.no_grad():
        acc_all = (model.decoder(model.encode(to_signed(flatten(xt)))[0]).argmax(-1) == yt).float().mean().item()
    assert whole["robustness"][0]["acc"] == pytest.approx(acc_all)


def test_without_a_validation_split_the_validation_cells_stay_empty(tiny_data, tmp_path):
    """val_size 0 (table1, as Alemi's code): no validation numbers are invented; each objective's
    one beta is its 'best', and a beta grid without validation errors is refused, naming the file."""
    import csv

    from infomax.data import load_prepared, prepare_official
    from infomax.vib_vim import tables as TA

    d = load_prepared(tiny_data)
    out = prepare_official("mnist", "wheel", d.splits["train"], d.splits["test"], tmp_path / "m.pt", val_size=0, seed=0)
    data = load_prepared(out)
    torch.manual_seed(0)
    res = evaluate(StochasticMLP(784, K=4).eval(), data, eval_a(gaussian=[0.0], saltpepper=[0.0], fgsm=[0.0]), "vib")
    assert res["val"] is None and 0 <= res["test"]["err_1"] <= 1
    rows = TA.rows([{"objective": "vib", "beta": 1e-3, "seed": s, "K": 256, "train_seconds": 1.0, "precision": "float32",
                     **res} for s in (0, 1)] +
                   [{"objective": "deterministic", "beta": 0.0, "seed": 0, "K": 256, "train_seconds": 1.0, **res}])
    assert [r["val_err_avg"] for r in rows["validation"]] == [None, None, None]
    paths = TA.write_tables(rows, TA.COLUMNS, tmp_path / "t")
    val = next(p for p in paths if p.name == "validation.csv")
    assert [r["val_err_avg"] for r in csv.DictReader(open(val))] == ["", "", ""]        # empty cells
    choice = TA.choose(val)
    assert choice.best == {"vib": 1e-3, "deterministic": 0.0} and not choice.selected and choice.words.startswith("only beta")
    grid = tmp_path / "grid.csv"
    grid.write_text("objective,beta,seed,K,val_err_avg\nvib,0.001,0,256,\nvib,0.01,0,256,\n")
    with pytest.raises(ValueError, match="grid.csv: vib has 2 betas but no validation errors"):
        TA.choose(grid)
