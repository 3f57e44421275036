"""Tools off the science path: the benchmark and restore-mtimes (after `dvc pull`)."""
