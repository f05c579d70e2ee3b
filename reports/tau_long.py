"""Kendall tau of each CPU proxy against a long run on the same data, from stored summaries.

The protocol study (`proxy-study-*`) asks two taus of every proxy: against the paper's ImageNet
top-1 (proxy error and dataset gap together) and against a long run on the same data (the proxy's
own error). The long run is `evit-search proxy-check --protocol cpu-long --seeds 1 --json LONG`.
This script ranks against it, without training anything again:

- a protocol with a `proxy-check --json` summary (per-model means): its top-1 means and its mean
  validation losses against the long run's top-1 means;
- a row of the study CSV without per-model means: its tau against the long run equals its tau
  against the paper when the long run ranks the models in the paper's order (the same ranking), and
  is left unknown otherwise.

    python reports/tau_long.py --long LONG.json --study reports/proxy-study-X.csv \
        --summary proxy=reports/proxy-check-proxy-X.json [--csv OUT.csv]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from evit_search.reproduce.proxycheck import taus_against_long
from evit_search.stats import kendall_test
from report_args import fmt, named_documents


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--long", required=True, type=Path, help="proxy-check --json summary of the long run")
    ap.add_argument("--study", type=Path, help="protocol study CSV (protocol, tau_paper, p_paper columns)")
    ap.add_argument("--summary", action="append", default=[], metavar="PROTOCOL=FILE",
                    help="a protocol's proxy-check --json summary (per-model means), repeatable")
    ap.add_argument("--csv", type=Path, help="also write the table as CSV")
    args = ap.parse_args(argv)

    long = json.loads(args.long.read_text())
    lm = long["models"]
    paper = [m for m in lm if lm[m].get("paper_top1") is not None]
    print(f"long run `{long['protocol']}`: {len(lm)} models, {long['seeds']} seed(s) per model")
    if len(paper) >= 2:
        tau_lp, p_lp = kendall_test([lm[m]["mean"] for m in paper], [lm[m]["paper_top1"] for m in paper])
        print(f"long run vs paper over {len(paper)} models: tau {tau_lp:.3f} (p {p_lp:.3g})")
    print("long run top-1 (validation split), low to high: "
          + ", ".join(f"{m.removeprefix('efficientvit_')} {lm[m]['mean']:.2f}" for m in sorted(lm, key=lambda m: lm[m]["mean"])))

    summaries = named_documents(ap, "--summary", args.summary)
    study = []
    if args.study:
        with args.study.open() as fh:
            study = [r for r in csv.DictReader(fh) if r["protocol"] not in summaries]
    rows = taus_against_long(lm, summaries, study)

    print("\n| protocol | tau vs long run, top-1 (p) | tau vs long run, val loss (p) | models | how |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['protocol']} | {fmt(r['tau_long'])} ({fmt(r['p_long'])}) | {fmt(r['tau_long_loss'])} "
              f"({fmt(r['p_long_loss'])}) | {r['models']} | {r['how']} |")
    if args.csv and rows:
        with args.csv.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
