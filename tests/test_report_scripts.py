"""The report scripts under reports/ rebuild the committed CSVs from the committed JSON documents,
and a bad document is a one-line usage error."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
R = ROOT / "reports"
ABLATE = "ablate-table6-fashion-mnist-{}-224px-vm-intel-xeon.json"
PROTOCOLS = ["proxy", "cpu-112px-2x10k", "cpu-96px-1x20k", "cpu-64px-1x30k", "cpu-64px-1x45k"]


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(R / name), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def _same_csv(ours: Path, committed: Path) -> None:
    a, b = pd.read_csv(ours), pd.read_csv(committed)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)


def test_table6_protocols_rebuilds_the_committed_csvs(tmp_path):
    args = [a for p in PROTOCOLS for a in ("--ablation", f"{p}={R / ABLATE.format(p)}")]
    out = _script("table6_protocols.py", *args, "--csv", str(tmp_path / "t.csv"), "--pairs-csv", str(tmp_path / "p.csv"))
    assert out.returncode == 0, out.stderr
    _same_csv(tmp_path / "t.csv", R / "proxy-study-table6-vm-intel-xeon.csv")
    _same_csv(tmp_path / "p.csv", R / "proxy-study-table6-pairs-vm-intel-xeon.csv")
    rows = pd.read_csv(tmp_path / "t.csv").set_index("protocol")
    assert rows.loc["proxy", "noise_model"] == "paired by seed" and rows.loc["proxy", "seeds_per_row"] == 3
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(PROTOCOLS) * (len(PROTOCOLS) - 1) // 2
    assert "| proxy | 3 | 11 |" in out.stdout


def test_tau_long_rebuilds_the_committed_csv(tmp_path):
    out = _script("tau_long.py", "--long", str(R / "proxy-check-cpu-long-fashion-mnist-vm-intel-xeon.json"),
                  "--study", str(R / "proxy-study-fashion-mnist-vm-amd-epyc.csv"),
                  "--summary", f"proxy={R / 'proxy-check-proxy-fashion-mnist-vm-amd-epyc.json'}",
                  "--csv", str(tmp_path / "l.csv"))
    assert out.returncode == 0, out.stderr
    _same_csv(tmp_path / "l.csv", R / "proxy-study-tau-long-vm-intel-xeon.csv")


@pytest.mark.parametrize("spec", ["proxy", "proxy={missing}", "proxy={notjson}"])
def test_a_bad_document_is_one_usage_line_and_exit_2(tmp_path, spec):
    (tmp_path / "bad.txt").write_text("not json")
    spec = spec.format(missing=tmp_path / "nope.json", notjson=tmp_path / "bad.txt")
    out = _script("table6_protocols.py", "--ablation", spec)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("table6_protocols.py: error: --ablation") and spec in last
