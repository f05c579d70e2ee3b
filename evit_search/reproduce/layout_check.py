"""Does a training layout change what a proxy measures? Speed of the layouts side by side, and
M4's accuracy trained in each over several seeds, as one report:
``python -m evit_search.reproduce.layout_check --protocol proxy --seeds 3``.

A protocol adopts ``channels_last`` for its speed; this checks that the accuracies it gives are
the contiguous layout's within the seed noise (the difference of the two means with a 95 %
Student-t interval from the pooled seed SD), and measures ``torch.compile`` with its compile
time, which a search pays once per new architecture.
"""

from __future__ import annotations

import argparse
import os
import statistics
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

import efficientvit

from ..env import fingerprint
from ..reporting.markdown import ReportFiles, markdown_table
from ..stats import SeedNoise, delta_interval, pooled_sd
from ..training import speed
from ..training.data import load_dataset
from ..training.protocols import get_protocol
from ..training.splits import prepare_data
from ..training.trainer import train


def speed_rows(model: str, sizes: list[int], batch: int, rounds: int, steps: int, with_compile: bool) -> list[dict]:
    rows = []
    for size in sizes:
        rs = speed.rates(model, size, batch, rounds, steps, with_compile)
        base = statistics.median(rs["contiguous"]["images_per_s"])
        for label, r in rs.items():
            xs = r["images_per_s"]
            rows.append({"size": size, "layout": label, "images_per_s": statistics.median(xs), "min": min(xs),
                         "max": max(xs), "over_contiguous": statistics.median(xs) / base,
                         "first_step_s": r["prepare_s"], "rounds": len(xs)})
    return rows


def accuracy_rows(model: str, protocol_name: str, seeds: int, data: str, threads: int | None) -> list[dict]:
    """M4 trained with the protocol in its own layout and in the other, seeds 0..seeds-1 each."""
    protocol = get_protocol(protocol_name)
    bundle = load_dataset(data, resolution=protocol.img_size)
    splits = prepare_data(bundle, protocol)
    cfg = efficientvit.get_config(model)
    rows = []
    for seed in range(seeds):
        for cl in (True, False):
            res = train(cfg, splits, replace(protocol, channels_last=cl), seed=seed, threads=threads)
            if res.status != "ok":
                raise RuntimeError(f"{model} seed {seed} ({'channels_last' if cl else 'contiguous'}): {res.reason}")
            rows.append({"layout": res.memory_format, "seed": seed, "val_top1": res.top1, "test_top1": res.test_top1,
                         "val_loss": res.val_loss, "train_images_per_s": res.train_images_per_s, "wall_s": res.wall_s})
            print(f"{res.memory_format} seed {seed}: val top-1 {res.top1:.2f} %, {res.train_images_per_s:.0f} img/s",
                  flush=True)
    return rows


def verdict(acc: pd.DataFrame) -> tuple[dict, list[str]]:
    groups = {k: tuple(g["val_top1"]) for k, g in acc.groupby("layout")}
    cl, co = SeedNoise(groups["channels_last"]), SeedNoise(groups["contiguous"])
    sd, df = pooled_sd([cl.values, co.values])
    d = delta_interval(cl.mean, cl.n, co.mean, co.n, sd, df)
    lines = [f"channels_last {cl.mean:.2f} ± {cl.sd or 0:.2f} %, contiguous {co.mean:.2f} ± {co.sd or 0:.2f} % "
             f"(validation top-1, mean ± SD over {cl.n} seeds each).",
             f"Difference channels_last - contiguous: {d.delta:+.2f} points"
             + (f", 95 % interval [{d.low:+.2f}, {d.high:+.2f}] from the pooled seed SD {sd:.2f} ({df} df): "
                f"{'the same within the seed noise' if d.verdict == 'indistinguishable' else d.verdict}."
                if d.low is not None else " (one seed each: no interval).")]
    return {"delta": d.delta, "ci_low": d.low, "ci_high": d.high, "verdict": d.verdict, "pooled_sd": sd}, lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="efficientvit_m4")
    ap.add_argument("--protocol", default="proxy")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--sizes", default="64,112", help="input sizes of the speed measurement")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--reports", default="reports")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load = [os.getloadavg()[0]]  # the machine may be shared: the speeds mean little without it
    sp = pd.DataFrame(speed_rows(args.model, [int(s) for s in args.sizes.split(",")], 128, args.rounds, 4,
                                 not args.no_compile))
    load.append(os.getloadavg()[0])
    acc = pd.DataFrame(accuracy_rows(args.model, args.protocol, args.seeds, args.data, args.threads))
    load.append(os.getloadavg()[0])
    summary, lines = verdict(acc)
    files = ReportFiles.at(Path(args.reports), "training-layout")
    sp.assign(kind="speed").to_csv(files.csv, index=False)
    acc.to_csv(files.csv.with_name(files.csv.stem + "-accuracy.csv"), index=False)
    protocol = get_protocol(args.protocol)
    md = [f"# Training layouts of {args.model}: speed and accuracy", "",
          f"{args.threads} thread(s), batch 128, AdamW, 1-channel input, random data for the speed (steps of the "
          f"layouts interleaved over {args.rounds} rounds of 4 steps; median, min-max); load average "
          + ", ".join(f"{x:.2f}" for x in load) + " (before the speed, after it, after the training).", "",
          "## Speed", "",
          markdown_table(sp, [("size", "px", 0), ("layout", "layout", 0), ("images_per_s", "img/s (median)", 0),
                              ("min", "min", 0), ("max", "max", 0), ("over_contiguous", "x contiguous", 2),
                              ("first_step_s", "first step s (compile)", 1)]), "",
          f"## Accuracy: protocol `{protocol.name}` on {args.data}, {args.seeds} seeds per layout", "",
          protocol.description, "",
          markdown_table(acc, [("layout", "layout", 0), ("seed", "seed", 0), ("val_top1", "val top-1 %", 2),
                               ("test_top1", "test top-1 %", 2), ("val_loss", "val loss", 3),
                               ("train_images_per_s", "train img/s", 0), ("wall_s", "s", 0)]), "",
          *[f"- {x}" for x in lines]]
    files.write_md(md, fingerprint(args.threads), plot=False)
    print("\n".join(lines))
    print(f"wrote {files.md}, {files.csv}; summary {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
