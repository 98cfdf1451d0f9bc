"""Writing a system's figures: one place decides format, resolution and cleanup."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def save_figures(figures: dict[str, Figure], directory: Path) -> list[Path]:
    """Save each figure as ``directory/name`` and close it; returns the paths in order."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        fig.savefig(directory / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(directory / name)
    return paths
