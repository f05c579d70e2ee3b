"""``evit-search tui``: browse a study's candidates and Pareto front, live, in the terminal.

A thin App; screens compose widgets; storage is read off the UI thread (a thread worker) and
the table refreshes when new trials arrive. torch is never imported to open the app.
"""

from __future__ import annotations

import yaml
from rich.text import Text
from textual import on, work
from textual.app import App
from textual.widgets import DataTable, Input, Label
from textual_plotext import PlotextPlot

from .. import storage as st
from ..errors import StorageError
from ..search.budget import budget_ratio
from . import view as D
from .screens import AblationScreen, CompareScreen, DetailScreen, HelpScreen, MainScreen, StudyPicker


class EvitTui(App):
    CSS_PATH = "app.tcss"
    TITLE = "evit-search"
    SCREENS = {"help": HelpScreen}

    def __init__(self, study: str | None, storage: str | None, refresh_s: float = 2.0, studies: list[dict] | None = None):
        super().__init__()
        self.study_name, self.storage_url, self.refresh_s = study, storage, refresh_s
        self.studies = studies or []
        self.view: D.StudyView | None = None
        self.mode, self.query_text = "all", ""
        self.sort_key, self.sort_reverse = "number", False
        self.axes = D.AXES[0]
        self.columns = list(D.COLUMNS)
        self.marked: int | None = None
        self.shown: list[st.TrialRecord] = []
        self._signature: tuple | None = None
        self._plot_points: list[tuple[float, float, int]] = []

    # ------------------------------------------------------------------ lifecycle
    def on_mount(self) -> None:
        if self.study_name:
            self.open_study(self.study_name)
        else:
            self.push_screen(StudyPicker(self.studies))

    def open_study(self, name: str) -> None:
        self.study_name = name
        self.sub_title = name
        self.push_screen(MainScreen())
        self.call_after_refresh(self._init_table)
        self.load()
        self.set_interval(self.refresh_s, self.load)

    def _init_table(self) -> None:
        t = self.main.query_one("#trials", DataTable)
        if self.view is not None:
            self.columns = D.columns(self.view)
        if [c.value for c in t.columns] != [k for k, _ in self.columns]:
            t.clear(columns=True)
            for key, header in self.columns:
                t.add_column(header, key=key, width=D.width(key))

    @property
    def main(self) -> MainScreen:
        return next(s for s in self.screen_stack if isinstance(s, MainScreen))

    @work(thread=True, exclusive=True, group="load")
    def load(self) -> None:
        """Read the storage off the UI thread; hand the result to the UI thread."""
        try:
            view = D.load_view(self.study_name, self.storage_url)
        except Exception as e:  # noqa: BLE001 - shown in the UI, the app keeps running
            self.call_from_thread(self.notify, f"cannot read the study: {e}", severity="error")
            return
        self.call_from_thread(self._apply, view)

    def _apply(self, view: D.StudyView) -> None:
        sig = tuple((r.number, r.state, r.status) for r in view.records)
        if sig == self._signature:
            return
        self._signature = sig
        self.view = view
        self.render_all()

    def render_all(self) -> None:
        if self.view is None:
            return
        self._init_table()
        scr = self.main
        recs = D.sort_records(D.filtered(self.view, self.mode, self.query_text), self.sort_key, self.sort_reverse)
        self.shown = recs
        t = scr.query_one("#trials", DataTable)
        current = self.current_number()
        t.clear()
        for r in recs:
            style = "bold red" if r.number in self.view.front else None
            cells = [D.text(r, k) for k, _ in self.columns]
            if style:
                cells = [Text(c, style=style) for c in cells]
            t.add_row(*cells, key=str(r.number))
        if current is not None and any(r.number == current for r in recs):
            t.move_cursor(row=[r.number for r in recs].index(current))
        counts = st.status_counts(self.view.records)
        ref = (self.view.attrs.get("reference_result") or {}).get("top1")
        scr.query_one("#summary", Label).update(
            f"{self.view.name} [{self.view.kind}] | {len(self.view.records)} trials: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + f" | front {len(self.view.front)} | budget {self.view.attrs.get('budget', '-')} vs "
              f"{self.view.attrs.get('reference', '-')}" + (f" (proxy {ref:.2f} %)" if ref is not None else "")
            + f" | filter {self.mode}" + (f" '{self.query_text}'" if self.query_text else "")
            + f" | sort {self.sort_key}{' desc' if self.sort_reverse else ''}")
        self.draw_plot()

    # ------------------------------------------------------------------ plot
    def _xy(self, r: st.TrialRecord) -> tuple[float | None, float | None]:
        return D.value(r, self.axes[0]), D.value(r, self.axes[1])

    def draw_plot(self) -> None:
        plot = self.main.query_one("#plot", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        self._plot_points = []
        groups = {"trained": [], "front": [], "infeasible": [], "failed": []}
        for r in self.view.records:
            x, y = self._xy(r)
            if x is None:
                continue
            if r.status == "failed":
                groups["failed"].append((x, y if y is not None else 0.0, r.number))
            elif y is None and self.axes[1] == "accuracy":  # not trained: drawn on the lower edge
                groups["infeasible"].append((x, 0.0, r.number))
            elif y is None:
                continue
            elif r.number in self.view.front:
                groups["front"].append((x, y, r.number))
            elif r.status in ("ok", "measured"):
                groups["trained"].append((x, y, r.number))
        lo = min([p[1] for g in ("trained", "front") for p in groups[g]], default=0.0)
        for name, marker, color in (("trained", "dot", "blue"), ("infeasible", "x", "gray"), ("failed", "x", "red"),
                                    ("front", "dot", "red")):
            pts = groups[name]
            if name in ("infeasible", "failed"):  # no accuracy: on the lower edge at their measured x
                pts = [(x, lo, n) for x, _, n in pts]
            if pts:
                plt.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, color=color, label=name)
                self._plot_points += pts
        if groups["front"]:
            fr = sorted(groups["front"])
            plt.plot([p[0] for p in fr], [p[1] for p in fr], color="red", marker="braille")
        if self.axes == ("ratio", "accuracy"):
            ref = (self.view.attrs.get("reference_result") or {}).get("top1")
            if ref is not None:
                plt.scatter([1.0], [ref], marker="*", color="green", label="reference")
            ratio = budget_ratio(self.view.attrs.get("budget"))
            if ratio:
                plt.vline(ratio, color="green")
        cur = self.current_number()
        sel = [p for p in self._plot_points if p[2] == cur]
        if sel:
            plt.scatter([sel[0][0]], [sel[0][1]], marker="O", color="yellow", label=f"#{cur}")
        plt.xlabel(self.axes[0])
        plt.ylabel(self.axes[1])
        plt.title("Pareto front (click a point)")
        plot.refresh()

    def on_click(self, event) -> None:
        plot = self.main.query_one("#plot", PlotextPlot) if self.view else None
        if plot is None or event.widget is not plot or not self._plot_points:
            return
        # map the click to data coordinates (approximately: plotext's margins ignored) and pick
        # the nearest point in normalised distance
        xs = [p[0] for p in self._plot_points]
        ys = [p[1] for p in self._plot_points]
        w, h = max(1, plot.size.width - 8), max(1, plot.size.height - 4)
        fx = min(1.0, max(0.0, (event.x - 6) / w))
        fy = min(1.0, max(0.0, 1 - (event.y - 1) / h))
        x = min(xs) + fx * (max(xs) - min(xs))
        y = min(ys) + fy * (max(ys) - min(ys))
        sx, sy = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
        best = min(self._plot_points, key=lambda p: ((p[0] - x) / sx) ** 2 + ((p[1] - y) / sy) ** 2)
        self.select_number(best[2])

    # ------------------------------------------------------------------ selection helpers
    def current_number(self) -> int | None:
        try:
            t = self.main.query_one("#trials", DataTable)
        except Exception:  # noqa: BLE001 - no main screen yet
            return None
        if not self.shown or t.cursor_row is None or t.cursor_row >= len(self.shown):
            return None
        return self.shown[t.cursor_row].number

    def current_record(self) -> st.TrialRecord | None:
        n = self.current_number()
        return next((r for r in self.view.records if r.number == n), None) if self.view and n is not None else None

    def select_number(self, number: int) -> None:
        numbers = [r.number for r in self.shown]
        if number not in numbers:
            self.mode, self.query_text = "all", ""
            self.render_all()
            numbers = [r.number for r in self.shown]
        self.main.query_one("#trials", DataTable).move_cursor(row=numbers.index(number))
        self.draw_plot()

    @on(DataTable.RowHighlighted, "#trials")
    def _highlight(self, event) -> None:
        if self.view:
            self.draw_plot()

    @on(DataTable.RowSelected, "#trials")
    def _selected(self, event) -> None:
        self.action_open()

    @on(DataTable.HeaderSelected, "#trials")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        self.sort_reverse = not self.sort_reverse if key == self.sort_key else False
        self.sort_key = key
        self.render_all()

    @on(Input.Changed, "#query")
    def _query(self, event: Input.Changed) -> None:
        self.query_text = event.value
        self.render_all()

    @on(Input.Submitted, "#query")
    def _query_done(self, event: Input.Submitted) -> None:
        self.main.query_one("#trials", DataTable).focus()

    def on_key(self, event) -> None:
        if event.key == "escape" and isinstance(self.focused, Input):
            self.main.query_one("#trials", DataTable).focus()
            event.stop()

    # ------------------------------------------------------------------ actions
    def action_open(self) -> None:
        rec = self.current_record()
        if rec:
            self.push_screen(DetailScreen(rec))

    def action_filter(self, mode: str) -> None:
        self.mode = mode
        self.render_all()

    def action_sort(self) -> None:
        """Sort by the column under the cursor; again on the same column reverses."""
        t = self.main.query_one("#trials", DataTable)
        key = self.columns[t.cursor_column][0]
        self.sort_reverse = not self.sort_reverse if key == self.sort_key else False
        self.sort_key = key
        self.render_all()

    def action_search(self) -> None:
        self.main.query_one("#query", Input).focus()

    def action_mark(self) -> None:
        self.marked = self.current_number()
        self.notify(f"marked #{self.marked} for compare; move to another trial and press c")

    def action_compare(self) -> None:
        rec = self.current_record()
        other = next((r for r in self.view.records if r.number == self.marked), None) if self.view else None
        if rec is None or other is None or other.number == rec.number:
            self.notify("mark a trial with m first, then press c on another one", severity="warning")
            return
        self.push_screen(CompareScreen(other, rec))

    def action_ablation(self) -> None:
        if self.view and self.view.kind == "ablation":
            self.push_screen(AblationScreen(self.view))
        else:
            self.notify("the Table 6 view is for ablation studies (evit-search ablate)", severity="warning")

    def action_swap_axes(self) -> None:
        """Cycle the plot through the pairs of measured objectives (D.AXES)."""
        self.axes = D.AXES[(D.AXES.index(self.axes) + 1) % len(D.AXES)]
        self.notify(f"plot: {self.axes[1]} against {self.axes[0]}")
        self.draw_plot()

    def action_reload(self) -> None:
        self._signature = None
        self.load()

    def action_copy_yaml(self) -> None:
        rec = self.current_record() if not isinstance(self.screen, DetailScreen) else self.screen.rec
        if rec and rec.config:
            self.copy_to_clipboard(yaml.safe_dump(rec.config, sort_keys=False))
            self.notify(f"config of #{rec.number} copied as YAML")

    def action_export(self) -> None:
        rec = self.current_record() if not isinstance(self.screen, DetailScreen) else self.screen.rec
        if rec:
            self.notify(f"exporting #{rec.number} to ./export/ ...")
            self._export(rec.number)

    @work(thread=True, group="export")
    def _export(self, number: int) -> None:
        from ..search.export import export_trial  # imports torch: only when asked

        try:
            written, note = export_trial(self.study_name, number, "export", self.storage_url)
            self.call_from_thread(self.notify, (note + "; " if note else "") + "wrote " + ", ".join(map(str, written)))
        except Exception as e:  # noqa: BLE001 - shown to the user
            self.call_from_thread(self.notify, f"export failed: {e}", severity="error")


def run_tui(study: str | None, storage: str | None) -> int:
    """Check the study/storage first (one-line errors), then start the app."""
    studies = st.list_studies(storage)
    if study is None and not studies:
        raise StorageError(f"no studies in {st.normalize_url(storage)}; run `evit-search run` first")
    if study is not None and study not in {s["name"] for s in studies}:
        raise StorageError(f"no study named {study!r} in {st.normalize_url(storage)}; studies there: "
                           + (", ".join(s["name"] for s in studies) or "none"))
    EvitTui(study, storage, studies=studies).run()
    return 0
