"""Training speed of the layouts a protocol may use, measured side by side:
``python -m evit_search.training.speed [--model efficientvit_m4] [--sizes 64,112]``.

For each input size: contiguous (NCHW) and channels_last eager steps, and ``torch.compile`` of
the channels_last step (its compile time counts: a search compiles once per new architecture).
Steps of every variant are interleaved over rounds; medians and min-max are printed. A
benchmark, not a test: what a protocol adopts is decided from its output; ``python -m evit_search.reproduce.layout_check``
writes it as a report, with the accuracy of both layouts over seeds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2

import efficientvit


def _step_fn(model, opt, x, y):
    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def variants(name: str, size: int, batch: int, with_compile: bool):
    """name -> (step function, seconds spent preparing it: compile time for the compiled one)."""
    out = {}
    for label, cl, comp in (("contiguous", False, False), ("channels_last", True, False),
                            ("channels_last+compile", True, True)):
        if comp and not with_compile:
            continue
        torch.manual_seed(0)
        cfg = efficientvit.get_config(name).with_overrides(num_classes=10, in_chans=1, img_size=size)
        model = efficientvit.build(cfg).train()
        x, y = torch.randn(batch, 1, size, size), torch.randint(0, 10, (batch,))
        if cl:
            model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        opt = create_optimizer_v2(model, "adamw", lr=1e-3)
        t0 = time.perf_counter()
        if comp:
            model = torch.compile(model)
        step = _step_fn(model, opt, x, y)
        step()  # the first step: compilation for the compiled model, allocation for all
        out[label] = (step, time.perf_counter() - t0)
    return out


def rates(name: str, size: int, batch: int = 128, rounds: int = 5, steps: int = 4,
          with_compile: bool = True) -> dict[str, dict]:
    """label -> ``{"images_per_s": [one per round], "prepare_s": first step's seconds}``; the
    variants' steps are interleaved round by round, so a busy machine slows them alike."""
    vs = variants(name, size, batch, with_compile)
    out = {label: {"images_per_s": [], "prepare_s": prep} for label, (_, prep) in vs.items()}
    for _ in range(rounds):
        for label, (step, _) in vs.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            out[label]["images_per_s"].append(steps * batch / (time.perf_counter() - t0))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="efficientvit_m4")
    ap.add_argument("--sizes", default="64,112")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=4, help="steps per variant per round")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for size in (int(s) for s in args.sizes.split(",")):
        rs = rates(args.model, size, args.batch, args.rounds, args.steps, not args.no_compile)
        base = statistics.median(rs["contiguous"]["images_per_s"])
        for label, r in rs.items():
            xs = r["images_per_s"]
            med = statistics.median(xs)
            print(f"{args.model} {size} px {label}: {med:.0f} img/s (min {min(xs):.0f}, max {max(xs):.0f}; "
                  f"{med / base:.2f}x contiguous), first step {r['prepare_s']:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
