import pytest

from infomax.data import prepare_embedded


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A real prepared file: 200 embedded MNIST digits (20 per class), stratified split."""
    path = tmp_path_factory.mktemp("data") / "mnist.pt"
    return prepare_embedded(path, n_images=200, test_fraction=0.25, val_fraction=0.1, seed=0)
