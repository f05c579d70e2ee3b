"""Draw the protocol study's figure from its CSV (`proxy-study-*.csv`).

Left: fidelity against cost -- each protocol's Kendall tau over M0-M5 against the paper (filled)
and, where known, against the long run on the same data (hollow), by the seconds M4 takes. Right:
tau against the paper by M4's seed SD, with the aim's SD. Red: protocols whose last stage has one
token (blind to attention).

    python reports/proxy_study_plot.py reports/proxy-study-X.csv "Protocol study, ... measured ..."
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from evit_search.reporting.plots import figure

SIGNIFICANT_TAU = 0.867  # exact two-sided p < 0.05 at n = 6
SD_AIM = 0.15


def draw(csv: Path, title: str) -> Path:
    df = pd.read_csv(csv)
    colour = ["tab:red" if blind else "tab:blue" for blind in df["blind_to_attention"]]
    png = csv.with_suffix(".png")
    with figure(png, ncols=2, figsize=(12, 4.8)) as (fig, (left, right)):
        left.scatter(df["seconds_per_m4"], df["tau_paper"], c=colour, s=50)
        left.scatter([], [], color="gray", s=50, label="vs the paper (filled)")
        if "tau_long" in df and df["tau_long"].notna().any():
            known = df[df["tau_long"].notna()]
            left.scatter(known["seconds_per_m4"], known["tau_long"], s=90, facecolors="none",
                         edgecolors=[c for c, k in zip(colour, df["tau_long"].notna()) if k])
            left.scatter([], [], s=90, facecolors="none", edgecolors="gray", label="vs the long run, same data (hollow)")
        for _, r in df.iterrows():
            left.annotate(f"{r['protocol']}\n(p {r['p_paper']:.3f})", (r["seconds_per_m4"], r["tau_paper"]),
                          xytext=(5, -9), textcoords="offset points", fontsize=7)
        left.axhline(SIGNIFICANT_TAU, color="gray", linestyle="--", linewidth=1)
        left.text(left.get_xlim()[0], SIGNIFICANT_TAU + 0.01, f" tau {SIGNIFICANT_TAU}: p < 0.05 at n = 6",
                  fontsize=7, color="gray")
        left.axvline(180, color="gray", linestyle=":", linewidth=1)
        left.set_xlabel("seconds to train and evaluate M4 (2 cores, shared host)")
        left.set_ylabel("Kendall tau over M0-M5 (1 seed per model)")
        left.set_ylim(min(0.0, df["tau_paper"].min() - 0.05), 1.05)
        left.set_title("fidelity against cost (red: last stage 1 token, blind to attention)", fontsize=9)
        left.legend(fontsize=7, loc="lower left")
        left.grid(alpha=0.3)

        right.scatter(df["m4_seed_sd"], df["tau_paper"], c=colour, s=50)
        for i, r in df.iterrows():  # labels above and below in turn: close points stay readable
            right.annotate(r["protocol"], (r["m4_seed_sd"], r["tau_paper"]), xytext=(5, 4 if i % 2 == 0 else -11),
                           textcoords="offset points", fontsize=7)
        right.axvline(SD_AIM, color="gray", linestyle="--", linewidth=1)
        right.text(SD_AIM + 0.005, 0.05, f"aim: SD <= {SD_AIM}", fontsize=7, color="gray")
        right.set_xlabel("M4 seed SD, val top-1 points (3 seeds)")
        right.set_ylabel("Kendall tau vs paper")
        right.set_ylim(0.0, 1.05)
        right.set_title("fidelity against seed noise", fontsize=9)
        right.grid(alpha=0.3)
        fig.suptitle(title, fontsize=10)
    return png


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    print(draw(Path(sys.argv[1]), sys.argv[2]))
