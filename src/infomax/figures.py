"""What every figure shares: matplotlib without a display, the resolution, and writing a figure
as PNG and PDF atomically.  Each study's ``figures`` module draws its own figures."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display, ever
import matplotlib.pyplot as plt  # noqa: E402

from .files import atomic_write  # noqa: E402

DPI = 150


def save_figure(fig, stem) -> list[Path]:
    """Write <stem>.png and <stem>.pdf atomically; close the figure; return the paths."""
    stem = Path(stem)
    try:
        return [atomic_write(stem.with_name(f"{stem.name}.{fmt}"),
                             lambda f, fmt=fmt: fig.savefig(f, format=fmt, dpi=DPI))
                for fmt in ("png", "pdf")]
    finally:
        plt.close(fig)
