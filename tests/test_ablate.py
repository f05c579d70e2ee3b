"""Table 6: the rows file, the comparison maths, a --no-train run."""

import subprocess
import sys

import pandas as pd
import pytest

import efficientvit
from evit_search.reproduce.table6 import load_table
from evit_search.reproduce.table6_compare import column_agreement
from evit_search.stats import pct_change, sign_agreement


def test_table_file_builds_eleven_distinct_valid_models():
    base, rows = load_table("table6")
    assert base == "efficientvit_m4" and [r.row for r in rows] == list(range(1, 12))
    ids = set()
    for r in rows:
        cfg = r.config(base)
        ids.add(cfg.arch_id())
        # the declarative file and the registry's named variants are the same models
        assert cfg.arch_id() == efficientvit.get_config(r.model).arch_id(), r.model
    assert len(ids) == 11
    assert rows[0].config(base).arch_id() == efficientvit.get_config("efficientvit_m4").arch_id()


def test_grades():
    from evit_search.reproduce.table6_report import grade

    assert grade(-4.8, -5.9) == "reproduces"
    assert grade(-2.2, -19.4) == "same direction, different size"
    assert grade(-15.3, 28.6) == "does NOT reproduce"
    assert grade(0.4, -0.8) == "reproduces"  # both within 1 %: no change
    assert grade(0.1, 2.2) == "does NOT reproduce"


def test_comparison_maths():
    assert pct_change(110.0, 100.0) == pytest.approx(10.0)
    assert pct_change(None, 100.0) is None and pct_change(5.0, 0.0) is None
    assert sign_agreement([1.0, -2.0, 0.5, None], [2.0, 3.0, 0.2, 1.0]) == (2, 3)
    assert sign_agreement([0.5, -3.0], [-0.8, -2.0], tol=1.0) == (2, 2)  # 0.5 and -0.8 are within 1 %: both "no change"
    rows = pd.DataFrame({
        "row": [1, 2, 3], "top1": [70.0, 69.0, 71.0], "paper_top1": [71.3, 68.3, 70.2],
        "top1_delta": [0.0, -1.0, 1.0], "paper_top1_delta": [0.0, -3.0, -1.1],
        "onnx-cpu_delta_pct": [0.0, 5.0, 20.0], "onnx-cpu_paper_delta_pct": [0.0, 5.4, 3.4],
    }).to_dict("records")
    agree = column_agreement(rows, ["onnx-cpu"])
    assert agree["top1"] == {"agree": 1, "n": 2}
    assert agree["onnx-cpu"]["agree"] == 2
    assert agree["kendall_top1"] == pytest.approx(1 / 3)  # pairs (1,2), (2,3) concordant; (1,3) not


@pytest.mark.slow
def test_no_train_run_with_tiny_budgets(tmp_path):
    db = tmp_path / "a.db"
    args = [sys.executable, "-m", "evit_search", "ablate", "table6", "--no-train", "--img-size", "64",
            "--backends", "torch-cpu,onnx-cpu,cuda", "--seconds", "0.05", "--warmup", "0.05", "--rounds", "2",
            "--max-rounds", "2", "--storage", str(db), "--reports", str(tmp_path / "rep")]
    out = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Table 6" in out.stdout
    csv = next((tmp_path / "rep").glob("ablate-*.csv"))
    df = pd.read_csv(csv)
    assert len(df) == 11 and (df["onnx-cpu_images_per_s"] > 0).all() and (df["torch-cpu_images_per_s"] > 0).all()
    assert df.loc[df.row == 1, "onnx-cpu_delta_pct"].iloc[0] == pytest.approx(0.0)
    assert df["onnx-cpu_paper_delta_pct"].notna().all() and df["params_m"].notna().all()
    md = next((tmp_path / "rep").glob("ablate-*.md")).read_text()
    assert "What reproduces" in md and "Depth of rows 2-4" in md
    # resumable: a second run finds the measurement and every row stored, and measures nothing again
    out2 = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert out2.returncode == 0, out2.stderr[-3000:]
    from evit_search import storage as st

    study = st.load_study(st.list_studies(str(db))[0]["name"], str(db))
    assert len(study) == 11
