"""The paper's tables, shipped as data (copied from shared/paper), read with pandas."""

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
# paper column per backend
PAPER_THROUGHPUT = {"torch-cpu": "cpu_ips", "onnx-cpu": "onnx_ips", "cuda": "gpu_ips", "onnx-cuda": "gpu_ips"}


@lru_cache(maxsize=None)
def table(name: str) -> pd.DataFrame:
    with resources.files("evit_search.reproduce.paperdata").joinpath(TABLES[name]).open() as f:
        return pd.read_csv(f)


def top1(timm_name: str) -> float | None:
    df = table("table2")
    row = df[df["timm_name"] == timm_name]
    return float(row["top1"].iloc[0]) if len(row) else None
