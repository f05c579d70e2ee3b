"""Time the TUI's first screen on a 500-trial study: ``python -m evit_search.tui.startup_bench``.

Each repeat starts a fresh interpreter (the command line's imports included), opens the study the
way ``evit-search tui STUDY`` does (storage and study checked, the first read forked) headless and stops
the clock when the child says READY: the summary counts every trial, the table knows every trial
(filtered and sorted: its ``shown``), and it has drawn itself with its visible rows filled (a draw
after the rows came, not the moment they were handed over; rows below the first screenful are
added a chunk per draw after it). The time until the child's process ends is recorded too
(interpreter teardown, after the user would quit; earlier reports timed up to it). Writes the
figures and a PNG of the main screen under reports/. A benchmark, not a test: speed targets live
here, not in timed unit tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..env import fingerprint, machine_name
from .demo import make_study

CHILD = r"""
import asyncio, sys
import evit_search.cli  # the command line's imports, as `evit-search tui` pays them
from evit_search.tui.app import open_app
from evit_search.tui.widgets import TrialsTable
drawn = [0]  # the rows the trials table held when it last drew itself (a draw is what the user sees)
_render_lines = TrialsTable.render_lines
def render_lines(self, crop):
    drawn[0] = self.row_count
    return _render_lines(self, crop)
TrialsTable.render_lines = render_lines
def ready(app, n):
    if not (app.view and len(app.view.records) == n and app.main.table.shown):
        return False
    table = app.main.table
    summary = str(app.main.query_one("#summary").content)
    visible = min(n, table.size.height - 1)  # under the header
    return (len(table.shown) == n and f"{n} trials" in summary and visible > 0
            and drawn[0] >= visible)
async def main():
    n = int(sys.argv[3])
    app = open_app(sys.argv[1], sys.argv[2], refresh_s=3600)  # what `evit-search tui STUDY` starts
    async with app.run_test(size=(140, 40)) as pilot:
        while not ready(app, n):
            await asyncio.sleep(0.005)
        print("READY", flush=True)
        if len(sys.argv) > 4:
            await pilot.pause(0.5)  # let the rest of the table and the plot render
            app.save_screenshot(sys.argv[4])
asyncio.run(main())
"""


def _time_child(child: list[str]) -> tuple[float, float] | None:
    """Seconds from the start of a fresh interpreter until it says READY, and until it ends."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(child, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    ready = None
    for line in proc.stdout:
        if line.strip() == "READY":
            ready = time.perf_counter() - t0
    err = proc.communicate()[1]
    watchdog.cancel()
    if ready is None or proc.returncode != 0:
        print(err, file=sys.stderr)
        return None
    return ready, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--reports", default="reports")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="evit-tui-bench-"))
    url = f"sqlite:///{tmp / 'demo.db'}"
    make_study(url, "demo", args.trials)
    times: list[float] = []
    load_before = os.getloadavg()[0]  # this machine may be shared: the figure means little without it
    child = [sys.executable, "-c", CHILD, "demo", url, str(args.trials)]
    exits = []
    for _ in range(args.repeats):
        t = _time_child(child)
        if t is None:
            return 1
        times.append(t[0])
        exits.append(t[1])
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
                  f"A {args.trials}-trial study (SQLite, `tui/demo.py`), a fresh interpreter per repeat (the command line's imports included), "
                  f"opened as `evit-search tui demo` opens it (storage and study checked), "
                  f"at 140x40, until the first screen is drawn with the study's trials (the summary counts all {args.trials}, "
                  f"the table has all {args.trials} sorted and has drawn its visible rows; the rows below the first screenful "
                  f"are added a chunk per draw after it): median {med:.2f} s over "
                  f"{len(times)} repeats (min {min(times):.2f}, max {max(times):.2f}). Target: under 2 s.\n\n"
                  f"Until the child process has ended (teardown included, as reports before this one timed it): median "
                  f"{statistics.median(exits):.2f} s (min {min(exits):.2f}, max {max(exits):.2f}).\n\n"
                  f"CPU {env['cpu_model']}, {env['logical_cpus']} logical CPUs, Python {env['python']}; load average "
                  f"(1 min) {load_before:.2f} before the repeats, {load_after:.2f} after (the bench itself adds 1 to 2: on Linux the "
                  f"TUI reads the study in a forked process while Textual starts, so a second idle core counts).\n\n"
                  f"![main screen]({png.name})\n")
    print(f"first screen, {args.trials} trials: median {med:.2f} s (min {min(times):.2f}, max {max(times):.2f}); "
          f"process end: median {statistics.median(exits):.2f} s; wrote {md}, {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
