"""Time the TUI's first screen on a 500-trial study: ``python -m evit_search.tui.startup_bench``.

Each repeat starts a fresh interpreter (imports included), opens the study headless and stops
when the trials table shows every trial. Writes the figures and a PNG of the main screen under
reports/. A benchmark, not a test: speed targets live here, not in timed unit tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..env import fingerprint, machine_name
from .demo import make_study

CHILD = r"""
import asyncio, sys, time
from evit_search.tui.app import EvitTui
async def main():
    app = EvitTui(sys.argv[1], sys.argv[2], refresh_s=3600)
    async with app.run_test(size=(140, 40)) as pilot:
        while not (app.view and len(app.main.table.shown) == int(sys.argv[3])):
            await asyncio.sleep(0.005)
        print("READY", flush=True)
        if len(sys.argv) > 4:
            await pilot.pause(0.5)  # let the summary line and the plot render
            app.save_screenshot(sys.argv[4])
asyncio.run(main())
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--reports", default="reports")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="evit-tui-bench-"))
    url = f"sqlite:///{tmp / 'demo.db'}"
    make_study(url, "demo", args.trials)
    times = []
    load_before = os.getloadavg()[0]  # this machine may be shared: the figure means little without it
    child = [sys.executable, "-c", CHILD, "demo", url, str(args.trials)]
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = subprocess.run(child, capture_output=True, text=True, timeout=120)
        if "READY" not in out.stdout:
            print(out.stderr, file=sys.stderr)
            return 1
        times.append(time.perf_counter() - t0)
    load_after = os.getloadavg()[0]
    svg = tmp / "main.svg"
    subprocess.run(child + [str(svg)], capture_output=True, timeout=120, check=True)  # untimed: the screenshot
    reports = Path(args.reports)
    reports.mkdir(parents=True, exist_ok=True)
    png = reports / "tui-main-screen.png"
    # rsvg drops the spaces that open or close a text element unless told to keep them
    svg.write_text(svg.read_text().replace("<svg ", '<svg xml:space="preserve" ', 1))
    try:
        subprocess.run(["rsvg-convert", str(svg), "-o", str(png)], check=True)
    except (OSError, subprocess.CalledProcessError):
        import cairosvg  # optional fallback

        cairosvg.svg2png(url=str(svg), write_to=str(png))
    env = fingerprint(with_gpu=False)
    med = statistics.median(times)
    md = reports / f"tui-startup-{machine_name()}.md"
    md.write_text(f"# TUI first screen on {env['machine']}\n\n"
                  f"A {args.trials}-trial study (SQLite, `tui/demo.py`), a fresh interpreter per repeat (imports included), "
                  f"at 140x40, until the trials table shows all {args.trials} trials: median {med:.2f} s over {len(times)} repeats "
                  f"(min {min(times):.2f}, max {max(times):.2f}). Target: under 2 s.\n\n"
                  f"CPU {env['cpu_model']}, {env['logical_cpus']} logical CPUs, Python {env['python']}; load average "
                  f"(1 min) {load_before:.2f} before the repeats, {load_after:.2f} after (the bench itself adds about 1).\n\n"
                  f"![main screen]({png.name})\n")
    print(f"first screen, {args.trials} trials: median {med:.2f} s (min {min(times):.2f}, max {max(times):.2f}); wrote {md}, {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
