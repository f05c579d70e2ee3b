"""One way to make a report figure: headless matplotlib, saved as PNG, always closed."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def figure(path: Path, **subplots) -> Iterator[tuple]:
    """``with figure(path, figsize=(6, 4)) as (fig, ax): ...`` draws, then saves ``path``."""
    import matplotlib  # only when a report draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after use('Agg'): no display needed

    fig, ax = plt.subplots(**subplots)
    try:
        yield fig, ax
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
