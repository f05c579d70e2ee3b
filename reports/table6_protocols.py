"""Kendall tau over the Table 6 rows for several CPU proxies, from their `ablate --json` documents.

The protocol study (`proxy-study-*`) asks, of every proxy, its tau over the eleven Table 6 rows
against the paper. Each protocol's rows are trained by `evit-search ablate table6 --protocol P
--json FILE`; this script reads the documents and prints, as markdown: each protocol's tau against
the paper (and, for a protocol trained with several seeds per row, each seed's tau alone: how far a
one-seed tau moves with the seed), then each pair of protocols against each other.

    python reports/table6_protocols.py --ablation proxy=A.json --ablation cpu-96px-1x20k=B.json \
        [--csv OUT.csv] [--pairs-csv PAIRS.csv]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from evit_search.reproduce.table6_compare import protocol_taus
from evit_search.stats import is_missing
from report_args import fmt, named_documents


def _sd(r: dict) -> str:
    if r.get("noise_model") == "paired by seed":
        return f"{r['seed_sd_blocked']:.2f} (residual of row + seed)"
    return "-" if is_missing(r.get("seed_sd_pooled")) else f"{r['seed_sd_pooled']:.2f} (pooled over the rows)"


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ablation", action="append", required=True, metavar="PROTOCOL=FILE",
                    help="a protocol's `ablate table6 --json` document, repeatable")
    ap.add_argument("--csv", type=Path, help="also write the per-protocol taus as CSV")
    ap.add_argument("--pairs-csv", type=Path, help="also write the protocol-against-protocol taus as CSV")
    args = ap.parse_args(argv)

    docs = named_documents(ap, "--ablation", args.ablation)
    rows, pairs = protocol_taus(docs)

    print("| protocol | seeds per row | rows | tau vs paper, top-1 (p, method) | one seed alone | seed SD behind the "
          "intervals | rows outside the noise |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        seeds = ", ".join(f"{t:.2f}" for t in r["tau_paper_per_seed"].values()) or "-"
        sig = r["significant_rows"]
        print(f"| {r['protocol']} | {r['seeds_per_row']} | {r['rows']} | {fmt(r['tau_paper'], 2)} ({fmt(r['p_paper'], 2)}, "
              f"{r['p_method'] or '-'}) | {seeds} | {_sd(r)} | "
              f"{'not measured (1 seed)' if sig is None else (', '.join(map(str, sig)) or 'none')} |")
    print("\n| protocol | protocol | rows | tau (p) |")
    print("|---|---|---|---|")
    for p in pairs:
        print(f"| {p['a']} | {p['b']} | {p['rows']} | {fmt(p['tau'], 2)} ({fmt(p['p'], 2)}) |")
    if args.csv and rows:
        _write(args.csv, [{**r, "tau_paper_per_seed": json.dumps(r["tau_paper_per_seed"]),
                           "significant_rows": json.dumps(r["significant_rows"])} for r in rows])
    if args.pairs_csv and pairs:
        _write(args.pairs_csv, pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
