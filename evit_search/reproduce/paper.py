"""The paper's tables, shipped as data (the CSV files in paperdata/), read with pandas."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

TABLES = {
    "table1": "table1_models.csv",
    "table2": "table2_imagenet.csv",
    "table3": "table3_tiny_vits.csv",
    "table6": "table6_ablation.csv",
    "table7": "table7_distill.csv",
}
# the paper's throughput column for each of our backends
PAPER_THROUGHPUT = {"torch-cpu": "cpu_ips", "onnx-cpu": "onnx_ips", "cuda": "gpu_ips", "onnx-cuda": "gpu_ips"}


@lru_cache(maxsize=None)
def table(name: str) -> pd.DataFrame:
    with resources.files("evit_search.reproduce.paperdata").joinpath(TABLES[name]).open() as f:
        return pd.read_csv(f)


def column_for(backend: str, table_name: str) -> str:
    """The paper's column a backend is compared with in a table. Table 6 has no PyTorch-CPU
    column: there torch-cpu is compared with the paper's other CPU figure, ONNX."""
    col = PAPER_THROUGHPUT[backend]
    return col if col in table(table_name).columns else "onnx_ips"


def top1(timm_name: str) -> float | None:
    df = table("table2")
    row = df[df["timm_name"] == timm_name]
    return float(row["top1"].iloc[0]) if len(row) else None
