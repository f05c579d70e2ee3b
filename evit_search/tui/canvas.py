"""The Pareto plot drawn into a grid of terminal cells, as rich ``Text`` lines: no Textual here.

From the top: the legend (outside the data area), the y axis's title, the data area, the strip of
trials without a y value (below the axis, never at a made-up value), the x axis with its ticks and
its title. Every trial drawn is a hit (column, row, trial), in the lines' own coordinates, so a
click picks the nearest point on the screen, whatever the axis range is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.text import Text

from ..reporting.pareto import SHORT_TITLES, ParetoInfo, PlotPoint

STYLE = {"front": "bold #ff5f5f", "step": "#ff5f5f", "trained": "#5f87d7", "untrained": "#9e9e9e",
         "failed": "#d75f5f", "reference": "bold #5fd75f", "paper": "bold #ffd75f", "budget": "#5f875f",
         "ci": "#5f87d7", "axis": "#9e9e9e", "title": "bold", "selected": "bold #000000 on #ffd700"}
GLYPH = {"front": "◆", "trained": "•", "untrained": "×", "failed": "!", "reference": "★", "paper": "▲"}
# what wins a cell: a label never covers a point, a point always covers a line
PRIORITY = {"": 0, "budget": 1, "ci": 2, "trained": 3, "step": 4, "untrained": 5, "failed": 5, "paper": 6,
            "reference": 7, "front": 8, "label": 9, "selected": 10}
ROW_ASPECT = 2.0  # a terminal cell is about twice as tall as wide: a row counts double in a distance


def ticks(lo: float, hi: float, n: int) -> list[float]:
    """About ``n`` round values (1, 2, 2.5, 5 times a power of ten) between ``lo`` and ``hi``."""
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= 0.7 * raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]


def tick_text(v: float, all_ticks: list[float]) -> str:
    step = abs(all_ticks[1] - all_ticks[0]) if len(all_ticks) > 1 else abs(v) or 1.0
    digits = max(0, -math.floor(math.log10(step) + 1e-9) + (1 if round(step / 10 ** math.floor(math.log10(step)), 6) == 2.5 else 0))
    return f"{v:.{digits}f}"


@dataclass
class Drawing:
    lines: list[Text]
    hits: list[tuple[int, int, int, int]] = field(default_factory=list)  # (col, row, priority, trial)

    def nearest(self, col: int, row: int, reach: float = 8.0) -> int | None:
        """The trial drawn nearest to a cell (rows count double), or None beyond ``reach`` cells."""
        best = min(self.hits, default=None,
                   key=lambda h: ((h[0] - col) ** 2 + (ROW_ASPECT * (h[1] - row)) ** 2, -h[2]))
        if best is None or math.hypot(best[0] - col, ROW_ASPECT * (best[1] - row)) > reach:
            return None
        return best[3]


class _Grid:
    """The data area and the strip: cells of (character, style, priority)."""

    def __init__(self, width: int, height: int):
        self.w, self.h = width, height
        self.cells = [[(" ", "", 0)] * width for _ in range(height)]

    def put(self, c: int, r: int, ch: str, kind: str, style: str | None = None) -> bool:
        if 0 <= c < self.w and 0 <= r < self.h and PRIORITY[kind] >= self.cells[r][c][2]:
            self.cells[r][c] = (ch, style if style is not None else STYLE.get(kind, ""), PRIORITY[kind])
            return True
        return False

    def free(self, c: int, r: int, n: int, below: int) -> bool:
        return 0 <= c and c + n <= self.w and 0 <= r < self.h and all(self.cells[r][k][2] <= below for k in range(c, c + n))

    def text(self, r: int) -> Text:
        return _join(self.cells[r])


def _join(cells) -> Text:
    t = Text()
    for ch, style, _ in cells:
        t.append(ch, style or None)
    return t


def legend(info: ParetoInfo, width: int, has_selection: bool) -> list[Text]:
    kinds = info.kinds()
    entries: list[tuple[str, str, str]] = []
    if "front" in kinds:
        entries.append(("◆─◆" if info.step else "◆", STYLE["front"], "front"))
    if "trained" in kinds:
        entries.append(("•", STYLE["trained"], "trained"))
    if any(p.paper for p in info.points):
        entries.append(("▲", STYLE["paper"], "paper"))
    if info.reference:
        entries.append(("★", STYLE["reference"], info.reference.label or "reference"))
    if info.budget:
        entries.append(("┆" if info.budget[0] == "x" else "┄", STYLE["budget"], info.budget_label))
    if "untrained" in kinds:
        entries.append(("×", STYLE["untrained"], "not trained"))
    if "failed" in kinds:
        entries.append(("!", STYLE["failed"], "failed"))
    if any(p.ci for p in info.points):
        entries.append(("│", STYLE["ci"], "seed CI"))
    if has_selection:
        entries.append(("◆", STYLE["selected"], "selected"))
    lines, line = [], Text()
    for glyph, style, label in entries:
        n = len(glyph) + 1 + len(label)
        if line.cell_len and line.cell_len + 2 + n > width:
            lines.append(line)
            line = Text()
        if line.cell_len:
            line.append("  ")
        line.append(glyph, style)
        line.append(" " + label)
    return lines + ([line] if line.cell_len else [])


def _marker(p: PlotPoint) -> str:
    """How a point is drawn: a paper model off the front by its own marker, others by their kind."""
    return "paper" if p.paper and p.kind != "front" else p.kind


def _place_label(grid: _Grid, c: int, r: int, label: str, style: str, on_strip: bool) -> bool:
    n = len(label)
    spots = [(c + 1, r), (c - n, r)] if on_strip else \
        [(c + 1, r), (c - n, r), (c + 1, r - 1), (c + 1, r + 1), (c - n, r - 1), (c - n, r + 1),
         (c - n // 2, r - 1), (c - n // 2, r + 1)]
    for below in (PRIORITY["budget"], PRIORITY["trained"]):  # a free spot first, then over dots and lines
        for sc, sr in spots:
            if grid.free(sc, sr, n, below):
                for k, ch in enumerate(label):
                    grid.put(sc + k, sr, ch, "label", style)
                return True
    return False


def draw(info: ParetoInfo, width: int, height: int, selected: int | None = None) -> Drawing:
    """The plot in ``width`` x ``height`` cells; ``selected``: the trial to highlight."""
    sel = next((p for p in info.points if p.number == selected), None)
    head = legend(info, width, sel is not None)
    strip = info.has_strip
    rows = height - len(head) - 1 - (2 if strip else 0) - 3  # the y title; the strip; axis, ticks, x title
    y_ticks = ticks(*info.ylim, max(2, rows // 4)) if rows > 0 else []
    labels = [tick_text(v, y_ticks) for v in y_ticks]
    gutter = max((len(s) for s in labels), default=1) + 1
    cols = width - gutter - 1
    if rows < 4 or cols < 12:
        return Drawing([Text("the plot needs a larger window", STYLE["axis"])])
    (x0, x1), (y0, y1) = info.xlim, info.ylim

    def col(x: float) -> int:
        return round((x - x0) / (x1 - x0) * (cols - 1))

    def row(y: float) -> int:
        return round((y1 - y) / (y1 - y0) * (rows - 1))

    strip_row = rows + 1
    grid = _Grid(cols, rows + (2 if strip else 0))

    def at(p: PlotPoint) -> tuple[int, int]:
        return col(p.x), (row(p.y) if p.y is not None else strip_row)

    if info.budget:
        kind, b = info.budget
        if kind == "x":
            for r in range(grid.h):
                grid.put(col(b), r, "┆", "budget")
        else:
            for c in range(cols):
                grid.put(c, row(b), "┄", "budget")
    if strip:
        for c in range(cols):
            grid.put(c, rows, "╌", "budget", STYLE["axis"])
    for p in info.points:
        if p.ci and p.y is not None:
            c = col(p.x)
            for r in range(row(p.ci[1]), row(p.ci[0]) + 1):
                grid.put(c, r, "│", "ci")
    for (xa, ya), (xb, yb) in zip(info.step, info.step[1:]):
        ca, ra, cb, rb = col(xa), row(ya), col(xb), row(yb)
        for c in range(ca + 1, cb):
            grid.put(c, ra, "─", "step")
        if rb > ra:
            grid.put(cb, ra, "┐" if cb > ca else "│", "step")
            for r in range(ra + 1, rb):
                grid.put(cb, r, "│", "step")
    out = Drawing([])
    top = len(head) + 1  # the data area's first line
    for p in sorted(info.points, key=lambda p: PRIORITY[_marker(p)]) + ([info.reference] if info.reference else []):
        kind = _marker(p)
        c, r = at(p)
        grid.put(c, r, GLYPH[kind], kind)
        if p.number is not None:
            out.hits.append((gutter + 1 + c, top + r, PRIORITY[kind], p.number))
    if sel is not None:
        c, r = at(sel)
        grid.put(c, r, grid.cells[r][c][0], "selected")
    for p in [*info.front, *(q for q in info.points if _marker(q) == "paper"), info.reference]:
        if p is not None:
            _place_label(grid, *at(p), p.label, STYLE[_marker(p)], p.y is None)
    if sel is not None and not sel.label:
        _place_label(grid, *at(sel), f"#{sel.number}", STYLE["selected"], sel.y is None)
    if strip:
        _label_strip(grid, rows, info.strip_label)

    lines = list(head)
    lines.append(Text(" " * gutter) + Text("↑ " + info.titles[1], STYLE["title"]))
    tick_rows = {row(v): s for v, s in zip(y_ticks, labels)}
    for r in range(rows):
        lines.append(Text(f"{tick_rows.get(r, ''):>{gutter - 1}} ", STYLE["axis"])
                     + Text("┤" if r in tick_rows else "│", STYLE["axis"]) + grid.text(r))
    if strip:
        lines.append(Text(" " * gutter + "├", STYLE["axis"]) + grid.text(rows))
        lines.append(Text(" " * gutter + "│", STYLE["axis"]) + grid.text(strip_row))
    lines += _x_axis(info, gutter, cols, col)
    out.lines = lines
    return out


def _label_strip(grid: _Grid, r: int, label: str) -> None:
    """Name the strip on the line over it, at the right: no mark is ever there."""
    text = f" {label} "[: grid.w - 1]
    for k, ch in enumerate(text):
        grid.put(grid.w - 1 - len(text) + k, r, ch, "label", STYLE["untrained"] + " italic")


def _x_axis(info: ParetoInfo, gutter: int, cols: int, col) -> list[Text]:
    xt = ticks(*info.xlim, max(2, cols // 8))
    axis = ["─"] * cols
    marks = [" "] * (cols + 8)
    for v in xt:
        c = col(v)
        if 0 <= c < cols:
            axis[c] = "┬"
            s = tick_text(v, xt)
            start = min(max(0, c - len(s) // 2), cols - len(s))
            if all(ch == " " for ch in marks[max(0, start - 1):start + len(s) + 1]):
                marks[start:start + len(s)] = list(s)
    title = next((t + " →" for t in (info.titles[0], SHORT_TITLES.get(info.axes[0], "")) if len(t) + 2 <= cols),
                 info.titles[0][:cols])
    return [Text(" " * gutter + "└" + "".join(axis), STYLE["axis"]),
            Text(" " * (gutter + 1) + "".join(marks).rstrip()[:cols], STYLE["axis"]),
            Text(" " * (gutter + 1) + f"{title[:cols]:^{cols}}".rstrip(), STYLE["title"])]
