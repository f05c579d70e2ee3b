"""Table 6, ours beside the paper's: pure maths over stored records (no torch), shared by the
report, the CLI and the TUI."""

from __future__ import annotations

from typing import Any

from .. import storage as st
from ..stats import (
    SeedNoise,
    blocked_sd,
    delta_interval,
    is_missing,
    kendall_method,
    kendall_test,
    pct_change,
    pooled_sd,
    seed_shift_p,
    sign_agreement,
    stored_ci_coverage,
)
from . import paper


def run_seed(r: st.TrialRecord) -> int:
    """The seed a row's trial was trained with (stored since --seeds; before, in its training record)."""
    return int(r.attrs.get("seed", (r.train or {}).get("seed", 0)))


def comparison(records: list[st.TrialRecord], backends: list[str] | None = None) -> list[dict]:
    """One row per Table 6 row, paper and ours side by side, each as a change against row 1.
    Rows are the paper's, plus any a user's table adds; the latest measured or trained trial of a
    row is used for what all its runs share; its top-1 is the mean over its seeds (one trial per
    seed), with the seed noise behind each delta's 95 % interval: when every row has the same seeds,
    the seeds are blocks (a seed shifts every row alike) and the interval is the paired one from the
    residual SD of row + seed; otherwise the seed SD pooled over the rows. The report and the TUI
    both show this."""
    p = paper.table("table6").set_index("id")
    ordered = sorted(records, key=lambda r: r.number)
    by_row = {r.row: r for r in ordered if r.row is not None and r.status in ("ok", "measured")}
    runs: dict[int, dict[int, float]] = {}  # row -> seed -> top-1 (the latest trial of each seed)
    for r in ordered:  # only runs of the row's current architecture (a rematch changes it)
        if r.row in by_row and r.arch_id == by_row[r.row].arch_id and r.status == "ok" and r.accuracy is not None:
            runs.setdefault(r.row, {})[run_seed(r)] = r.accuracy
    noise = {row: SeedNoise(tuple(v.values())) for row, v in runs.items()}
    sd, df = pooled_sd([n.values for n in noise.values()])
    bsd, bdf = blocked_sd(runs)
    shift_p = seed_shift_p(runs)
    # the noise a delta is judged by: paired by seed when the design is complete, else pooled
    if bsd is not None:
        nsd, ndf, noise_model = bsd, bdf, "paired by seed"
    else:
        nsd, ndf, noise_model = sd, df, ("pooled" if sd is not None else None)
    if backends is None:
        backends = list(dict.fromkeys(b for r in by_row.values() for b in r.throughput))
    acc1 = noise[1].mean if 1 in noise else None
    out = []
    for row in sorted(set(p.index) | set(by_row)):
        t, pr = by_row.get(row), (p.loc[row] if row in p.index else None)
        d: dict[str, Any] = {
            "row": row, "ablation": pr["ablation"] if pr is not None else (t.label if t else ""),
            "model": (t.attrs.get("model") if t else None),
            "paper_top1": None if pr is None else float(pr["top1_100ep"]),
            "top1": noise[row].mean if row in noise else None,
            "top1_sd": noise[row].sd if row in noise else None,
            "n_seeds": noise[row].n if row in noise else 0,
            "seeds": sorted(runs.get(row, {})),
            "top1_runs": [runs[row][k] for k in sorted(runs[row])] if row in runs else [],  # in the order of "seeds"
            "seed_sd_pooled": sd, "seed_sd_df": df,
            "seed_sd_blocked": bsd, "seed_sd_blocked_df": bdf, "seed_shift_p": shift_p, "noise_model": noise_model,
            "params_m": (t.cost or {}).get("params_m") if t else None,
            "flops_m": (t.cost or {}).get("flops_m") if t else None,
            "paper_top1_delta": None if pr is None else float(pr["top1_100ep"] - p.loc[1]["top1_100ep"]),
            "depths": [s["depth"] for s in (t.config or {}).get("stages", [])] if t else None,
            "widths": [s["dim"] for s in (t.config or {}).get("stages", [])] if t else None,
            "zerocost": ((t.attrs.get("zerocost") or {}).get("scores") or None) if t else None,
            "zerocost_settings": ((t.attrs.get("zerocost") or {}).get("settings") or None) if t else None,
            "zerocost_s": (sum(((t.attrs.get("zerocost") or {}).get("seconds") or {}).values()) or None) if t else None,
        }
        d["top1_delta"] = d["top1"] - acc1 if d["top1"] is not None and acc1 is not None else None
        d["top1_delta_ci_low"] = d["top1_delta_ci_high"] = d["verdict"] = None
        if d["top1_delta"] is not None and row != 1 and nsd is not None:
            delta = delta_interval(d["top1"], noise[row].n, acc1, noise[1].n, nsd, ndf)
            d["top1_delta_ci_low"], d["top1_delta_ci_high"], d["verdict"] = delta.low, delta.high, delta.verdict
        for b in backends:
            thr = (t.throughput.get(b) if t else None) or {}
            col = paper.column_for(b, "table6")
            d[f"{b}_images_per_s"] = thr.get("images_per_s")
            d[f"{b}_ratio"] = thr.get("ratio_to_reference")
            d[f"{b}_ratio_ci_low"], d[f"{b}_ratio_ci_high"] = thr.get("ratio_ci_low"), thr.get("ratio_ci_high")
            d[f"{b}_ratio_ci_coverage"] = stored_ci_coverage(thr)  # below 6 rounds, under 95 %
            d[f"{b}_delta_pct"] = 100.0 * (thr["ratio_to_reference"] - 1.0) if thr.get("ratio_to_reference") else None
            d[f"{b}_paper_delta_pct"] = None if pr is None else pct_change(float(pr[col]), float(p.loc[1][col]))
        out.append(d)
    return out


def top1_text(r: dict) -> str:
    if is_missing(r.get("top1")):
        return "-"
    return f"{r['top1']:.2f}" + (f" ± {r['top1_sd']:.2f} ({r['n_seeds']})" if r.get("top1_sd") is not None
                                 else f" ({r.get('n_seeds') or 1})")


def delta_cell(r: dict) -> str:
    """``-0.42 [-1.10, +0.26] indistinguishable``; without measured noise the bare delta."""
    if is_missing(r.get("top1_delta")):
        return "-"
    if r["row"] == 1 or r.get("top1_delta_ci_low") is None:
        return f"{r['top1_delta']:+.2f}"
    return f"{r['top1_delta']:+.2f} [{r['top1_delta_ci_low']:+.2f}, {r['top1_delta_ci_high']:+.2f}] {r['verdict']}"


def column_agreement(rows: list[dict], backends: list[str]) -> dict[str, dict]:
    rest = [r for r in rows if r["row"] != 1]
    out = {}
    agree, n = sign_agreement([r["top1_delta"] for r in rest], [r["paper_top1_delta"] for r in rest])
    out["top1"] = {"agree": agree, "n": n}
    for b in backends:
        agree, n = sign_agreement([r.get(f"{b}_delta_pct") for r in rest], [r.get(f"{b}_paper_delta_pct") for r in rest],
                                  tol=1.0)
        out[b] = {"agree": agree, "n": n, "paper_column": paper.column_for(b, "table6")}
    sig = [r for r in rest if r.get("verdict") in ("better", "worse") and not is_missing(r["paper_top1_delta"])]
    agree, n = sign_agreement([r["top1_delta"] for r in sig], [r["paper_top1_delta"] for r in sig])
    out["significant"] = {"agree": agree, "n": n, "rows": [r["row"] for r in sig],
                          "noise_measured": any(r.get("seed_sd_pooled") is not None for r in rows)}
    ok = [r for r in rows if not is_missing(r["top1"]) and not is_missing(r["paper_top1"])]
    ours, theirs = [r["top1"] for r in ok], [r["paper_top1"] for r in ok]
    tau, pv = kendall_test(ours, theirs) if len(ok) > 1 else (None, None)
    out["kendall_top1"], out["kendall_top1_p"] = tau, pv
    # the paper's Table 6 has ties: then the p is asymptotic
    out["kendall_top1_p_exact"] = len(ok) > 1 and kendall_method(ours, theirs) == "exact"
    return out


def grade(ours: float, theirs: float) -> str:
    """'reproduces' (same direction and size within 2x or 3 points), 'same direction, different
    size', or 'does NOT reproduce' (opposite direction). |delta| <= 1 % counts as no change."""
    small_o, small_t = abs(ours) <= 1.0, abs(theirs) <= 1.0
    if small_o and small_t:
        return "reproduces"
    if small_o != small_t or (ours > 0) != (theirs > 0):
        return "does NOT reproduce"
    if abs(ours - theirs) <= 3.0 or 0.5 <= ours / theirs <= 2.0:
        return "reproduces"
    return "same direction, different size"


def results_json(rows: list[dict], backends: list[str], matches: dict[int, dict], calibration: dict | None,
                 meta: dict) -> dict:
    """``ablate --json``: every row with its depths, its throughput ratio to row 1 per backend,
    its top-1 (mean over seeds, SD, each seed's run) and delta to row 1 with the 95 % interval
    from the seed noise (paired by seed when every row has the same seeds, else pooled:
    ``noise_model``) and its verdict, beside the paper's; its match and its zero-cost scores; the
    agreement figures. Accuracy fields are null when nothing was trained, intervals and verdicts when the
    seed noise was not measured (one seed per row)."""
    out_rows = []
    for r in rows:
        m = matches.get(r["row"])
        out_rows.append({
            "row": r["row"], "ablation": r["ablation"], "model": r.get("model"),
            "depths": r.get("depths"), "widths": r.get("widths"),
            "throughput_ratio": {b: r.get(f"{b}_ratio") for b in backends},
            "throughput_ratio_ci": {b: [r.get(f"{b}_ratio_ci_low"), r.get(f"{b}_ratio_ci_high")] for b in backends},
            "throughput_ratio_ci_coverage": {b: r.get(f"{b}_ratio_ci_coverage") for b in backends},
            "images_per_s": {b: r.get(f"{b}_images_per_s") for b in backends},
            "throughput_delta_pct": {b: r.get(f"{b}_delta_pct") for b in backends},
            "paper_throughput_delta_pct": {b: r.get(f"{b}_paper_delta_pct") for b in backends},
            "throughput_grade": {b: grade(r[f"{b}_delta_pct"], r[f"{b}_paper_delta_pct"]) for b in backends
                                 if not is_missing(r.get(f"{b}_delta_pct")) and not is_missing(r.get(f"{b}_paper_delta_pct"))},
            "match": None if m is None else {"matched": m["matched"], "backend": m["backend"], "kind": m["chosen"]["kind"],
                                             "ratio": m["chosen"]["ratio"], "ratio_ci": [m["chosen"].get("ci_low"),
                                                                                         m["chosen"].get("ci_high")],
                                             "ratio_ci_coverage": m["chosen"].get("ci_coverage"),
                                             "stated_depths": m["stated"]["depths"],
                                             "stated_ratio": m["stated"]["ratio"], "variants_measured": len(m["tried"])},
            "params_m": r.get("params_m"), "flops_m": r.get("flops_m"),
            "top1": r.get("top1"), "top1_sd": r.get("top1_sd"), "n_seeds": r.get("n_seeds"), "seeds": r.get("seeds"),
            "top1_runs": r.get("top1_runs"), "paper_top1": r.get("paper_top1"),
            "delta": r.get("top1_delta"), "ci_low": r.get("top1_delta_ci_low"), "ci_high": r.get("top1_delta_ci_high"),
            "verdict": r.get("verdict"),
            "paper_delta": r.get("paper_top1_delta"),
            "zerocost": r.get("zerocost"),
        })
    agree = column_agreement(rows, backends)
    tau = agree["kendall_top1"]
    sig = agree["significant"]
    measured = sig["noise_measured"]
    first = rows[0] if rows else {}  # the seed noise is the same in every row
    return {**meta, "backends": backends, "rows": out_rows,
            **{k: first.get(k) for k in ("seed_sd_pooled", "seed_sd_df", "seed_sd_blocked", "seed_sd_blocked_df",
                                         "seed_shift_p", "noise_model")},
            "significant_rows": sig["rows"] if measured else None,
            "sign_agreement_significant": {"agree": sig["agree"], "n": sig["n"]} if measured else None,
            "kendall_tau_paper": None if is_missing(tau) else tau,
            "kendall_tau_paper_p": None if is_missing(agree["kendall_top1_p"]) else agree["kendall_top1_p"],
            "sign_agreement": {k: v for k, v in agree.items() if k != "kendall_top1"},
            "zerocost_calibration": calibration}


def protocol_taus(docs: dict[str, dict]) -> tuple[list[dict], list[dict]]:
    """Kendall tau over the Table 6 rows for several protocols, from their ``ablate --json``
    documents (protocol name -> document): each protocol against the paper, on its per-row means
    and, where every row has several seeds, on each seed's runs alone (how far a one-seed tau moves
    with the seed); and each pair of protocols against each other over the rows both trained
    (protocols that agree with each other but not with the paper point at the dataset, protocols
    that do not agree with each other at their noise)."""
    def trained(doc: dict) -> dict[int, dict]:
        return {r["row"]: r for r in doc["rows"] if not is_missing(r.get("top1"))}

    out = []
    for name, doc in docs.items():
        rows = [r for r in trained(doc).values() if not is_missing(r.get("paper_top1"))]
        ours, theirs = [r["top1"] for r in rows], [r["paper_top1"] for r in rows]
        tau, p = kendall_test(ours, theirs)
        common = set.intersection(*(set(r.get("seeds") or []) for r in rows)) if rows else set()
        per_seed = {}
        for s in sorted(common) if len(common) > 1 else []:
            vals = [r["top1_runs"][r["seeds"].index(s)] for r in rows if r.get("top1_runs")]
            if len(vals) == len(rows):
                per_seed[s] = kendall_test(vals, theirs)[0]
        method = None if len(rows) < 2 else ("exact" if kendall_method(ours, theirs) == "exact" else "asymptotic")
        out.append({"protocol": name, "seeds_per_row": max((r.get("n_seeds") or 1 for r in rows), default=0),
                    "rows": len(rows), "tau_paper": tau, "p_paper": p, "p_method": method,
                    "tau_paper_per_seed": per_seed, "seed_sd_pooled": doc.get("seed_sd_pooled"),
                    "seed_sd_blocked": doc.get("seed_sd_blocked"), "noise_model": doc.get("noise_model"),
                    "significant_rows": doc.get("significant_rows")})
    pairs = []
    names = list(docs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ta, tb = trained(docs[a]), trained(docs[b])
            both = sorted(set(ta) & set(tb))
            tau, p = kendall_test([ta[r]["top1"] for r in both], [tb[r]["top1"] for r in both])
            pairs.append({"a": a, "b": b, "rows": len(both), "tau": tau, "p": p})
    return out, pairs
