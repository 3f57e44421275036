"""The studies of this project, in report order: the one module that names them.  Each is a
``<study>.study`` module (interface: ``infomax.vib_vim.study``).  A third study is a package with
such a module, one line here, its block in the config schema and its rule file
(workflow/rules/<name>.smk, included by the Snakefile for every study here)."""

from . import config
from .dim_infobal import study as dim_infobal
from .vib_vim import study as vib_vim

STUDIES = (vib_vim, dim_infobal)


def select(cfg: dict) -> tuple[str, dict]:
    """``infomax.config.select`` with every study's top-level overrides."""
    return config.select(cfg, STUDIES)


def selected(exp: dict) -> tuple:
    """The study modules a merged experiment runs (its ``studies`` key), in report order."""
    return tuple(s for s in STUDIES if s.NAME in exp["studies"])


def validate_config(cfg: dict, schema_path=config.SCHEMA) -> dict:
    """``infomax.config.validate_config`` with every study's own checks."""
    return config.validate_config(cfg, schema_path, STUDIES)


def load(path=config.ROOT / "config" / "config.yaml", experiment_name=None) -> dict:
    """``infomax.config.load`` with every study's own checks."""
    return config.load(path, experiment_name, STUDIES)


def report_settings(cfg: dict) -> dict:
    """What the replication report needs to know about the selected experiment beyond its tables:
    per study it runs, the facts compared with the published protocols (config/published.yaml)
    and the options its claims read; the report's statistics."""
    name, exp = select(cfg)
    paper = config.experiment(cfg, config.BASE)
    run = selected(exp)
    return {"experiment": name, "report": dict(cfg["report"]), "studies": [s.NAME for s in run],
            "facts": {s.NAME: s.facts(exp, paper) for s in run},
            "options": {s.NAME: s.options(exp) for s in run}}
