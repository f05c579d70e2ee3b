"""Table 6, ours beside the paper's: pure maths over stored records (no torch), shared by the
report, the CLI and the TUI."""

from __future__ import annotations

from typing import Any

from .. import storage as st
from ..stats import is_missing, kendall, pct_change, sign_agreement
from . import paper

DEPTH_ROWS = (2, 3, 4)  # rows where the paper changed depth "to keep throughput similar"


def comparison(records: list[st.TrialRecord], backends: list[str] | None = None) -> list[dict]:
    """One row per Table 6 row, paper and ours side by side, each as a change against row 1.
    Rows are the paper's, plus any a user's table adds; the latest measured or trained trial of a
    row is used. The report and the TUI both show this."""
    p = paper.table("table6").set_index("id")
    by_row = {r.row: r for r in sorted(records, key=lambda r: r.number)
              if r.row is not None and r.status in ("ok", "measured")}
    if backends is None:
        backends = list(dict.fromkeys(b for r in by_row.values() for b in r.throughput))
    acc1 = by_row[1].accuracy if 1 in by_row else None
    out = []
    for row in sorted(set(p.index) | set(by_row)):
        t, pr = by_row.get(row), (p.loc[row] if row in p.index else None)
        d: dict[str, Any] = {
            "row": row, "ablation": pr["ablation"] if pr is not None else (t.label if t else ""),
            "model": (t.attrs.get("model") if t else None),
            "paper_top1": None if pr is None else float(pr["top1_100ep"]),
            "top1": t.accuracy if t else None,
            "params_m": (t.cost or {}).get("params_m") if t else None,
            "flops_m": (t.cost or {}).get("flops_m") if t else None,
            "paper_top1_delta": None if pr is None else float(pr["top1_100ep"] - p.loc[1]["top1_100ep"]),
        }
        d["top1_delta"] = d["top1"] - acc1 if d["top1"] is not None and acc1 is not None else None
        for b in backends:
            thr = (t.throughput.get(b) if t else None) or {}
            col = paper.column_for(b, "table6")
            d[f"{b}_images_per_s"] = thr.get("images_per_s")
            d[f"{b}_ratio"] = thr.get("ratio_to_reference")
            d[f"{b}_delta_pct"] = 100.0 * (thr["ratio_to_reference"] - 1.0) if thr.get("ratio_to_reference") else None
            d[f"{b}_paper_delta_pct"] = None if pr is None else pct_change(float(pr[col]), float(p.loc[1][col]))
        out.append(d)
    return out


def column_agreement(rows: list[dict], backends: list[str]) -> dict[str, dict]:
    rest = [r for r in rows if r["row"] != 1]
    out = {}
    agree, n = sign_agreement([r["top1_delta"] for r in rest], [r["paper_top1_delta"] for r in rest])
    out["top1"] = {"agree": agree, "n": n}
    for b in backends:
        agree, n = sign_agreement([r.get(f"{b}_delta_pct") for r in rest], [r.get(f"{b}_paper_delta_pct") for r in rest],
                                  tol=1.0)
        out[b] = {"agree": agree, "n": n, "paper_column": paper.column_for(b, "table6")}
    ok = [r for r in rows if not is_missing(r["top1"]) and not is_missing(r["paper_top1"])]
    out["kendall_top1"] = kendall([r["top1"] for r in ok], [r["paper_top1"] for r in ok]) if len(ok) > 1 else None
    return out


def depth_check(rows: list[dict], backends: list[str]) -> list[dict]:
    """Rows 2-4: our throughput ratio to row 1; more than 10 % off 1.0 is flagged."""
    notes = []
    for r in rows:
        if r["row"] not in DEPTH_ROWS:
            continue
        for b in backends:
            ratio = r.get(f"{b}_ratio")
            if not is_missing(ratio):
                notes.append({"row": r["row"], "backend": b, "ratio": float(ratio), "off": abs(ratio - 1.0) > 0.10})
    return notes
