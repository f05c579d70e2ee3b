"""Markdown reports: number formatting, tables, the environment section and the files of one
report (CSV, markdown, PNG) named after the machine that measured them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..env import machine_name
from ..stats import is_missing, stored_ci_coverage

if TYPE_CHECKING:  # a name in annotations only: pandas (0.25 s) stays off every CLI command's start-up
    import pandas as pd

ENV_KEYS = ("machine", "cpu_model", "logical_cpus", "threads", "allocator", "torch_version", "onnxruntime_version",
            "timm_version", "gpu_name", "gpu_driver", "platform")


def fmt(v, nd: int = 1) -> str:
    """A number with ``nd`` decimals, ``-`` when missing; other values as text."""
    if is_missing(v):
        return "-"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def coverage_text(coverage: float | None) -> str:
    """``93.8 % CI``: what an interval's coverage really is (below 6 rounds, less than 95 %)."""
    return "CI of unknown coverage" if is_missing(coverage) else f"{100 * coverage:.1f} % CI"


def interval_text(low, high, coverage: float | None, nd: int = 3) -> str:
    """``[0.950, 1.050] 93.8 % CI``; empty when the interval is missing."""
    if is_missing(low) or is_missing(high):
        return ""
    return f"[{low:.{nd}f}, {high:.{nd}f}] {coverage_text(coverage)}"


def ratio_ci_text(m: dict | None, nd: int = 3) -> str:
    """The interval of a stored measurement's ratio to its reference with its real coverage,
    ``[1.550, 1.700] 93.8 % CI``; empty when it has none."""
    m = m or {}
    return interval_text(m.get("ratio_ci_low"), m.get("ratio_ci_high"), stored_ci_coverage(m), nd)


def markdown_table(df: pd.DataFrame, columns: list[tuple[str, str, int]]) -> str:
    """``columns``: (field, header, decimals)."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(fmt(r[c], nd) for c, _, nd in columns) + " |" for r in df.to_dict("records")]
    return "\n".join([head, sep, *body])


def environment_md(env: dict) -> str:
    return "\n".join(f"- {k}: {env.get(k)}" for k in ENV_KEYS if env.get(k) is not None)


def safe_stem(text: str) -> str:
    """A file-name stem that keeps the whole text: every run of characters that are not letters,
    digits, ``.``, ``_`` or ``-`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "report"


@dataclass(frozen=True)
class ReportFiles:
    """The CSV, markdown and PNG of one report: ``<dir>/<stem>-<machine>.{csv,md,png}``."""

    csv: Path
    md: Path
    png: Path

    @classmethod
    def at(cls, reports_dir: Path, stem: str, machine: str | None = None) -> "ReportFiles":
        """``<stem>-<machine>.csv/.md/.png`` in ``reports_dir``; ``machine``: where the numbers were
        measured when not here (a report rewritten from stored runs), else this machine's name."""
        reports_dir.mkdir(parents=True, exist_ok=True)
        base = reports_dir / f"{safe_stem(stem)}-{safe_stem(machine) if machine else machine_name()}"
        return cls(Path(f"{base}.csv"), Path(f"{base}.md"), Path(f"{base}.png"))

    def write_md(self, lines: list[str], env: dict | None = None, plot: bool = True) -> None:
        """The markdown body, then the environment section and the plot, as every report ends."""
        tail = ["", "## Environment", "", environment_md(env or {}), ""] if env is not None else [""]
        if plot:
            tail += [f"![plot]({self.png.name})", ""]
        self.md.write_text("\n".join(lines + tail))

    def as_dict(self) -> dict[str, Path]:
        return {"csv": self.csv, "md": self.md, "png": self.png}
