"""The screens of the TUI: help, study picker, candidate detail, compare, Table 6, and the main
screen that holds the trials table and the Pareto plot."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, Input, Label, OptionList, Static
from textual_plotext import PlotextPlot

from .. import storage as st
from ..reporting.markdown import fmt
from ..reproduce import paper
from . import view as D

HELP = """\
[b]Keys[/b]
  ↑/↓, click      move in the trials table
  enter           open the candidate's detail
  s               sort by the column under the cursor; again reverses; click a header too
  a f p x         filter: all, feasible only, front only, failed
  /               text filter on knobs (e.g. "H=4/" or "C=96"); esc leaves it
  m               mark the current trial for compare; c compares it with the marked one
  e               export the current trial (config YAML, ONNX, state dict) to ./export/
  y               copy the current trial's config as YAML
  t               Table 6 view (ablation studies)
  o               plot: next pair of objectives (accuracy or ratio against ratio, img/s, FLOPs, params)
  r               reload now (it also reloads every few seconds)
  ?               this help;  q  quit
Click a point in the plot to select its trial."""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "close")]

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help")


class StudyPicker(Screen):
    """Lists the studies of a storage to pick from."""

    BINDINGS = [Binding("q", "app.quit", "quit")]

    def __init__(self, studies: list[dict]):
        super().__init__()
        self.studies = studies

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Pick a study (enter):", id="picker-title")
        yield OptionList(*(f"{s['name']}  [{s['kind']}]  {s['n_trials']} trials" for s in self.studies), id="picker")
        yield Footer()

    @on(OptionList.OptionSelected)
    def picked(self, event: OptionList.OptionSelected) -> None:
        self.app.open_study(self.studies[event.option_index]["name"])


class DetailScreen(Screen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "back"), Binding("y", "app.copy_yaml", "copy YAML"),
                Binding("e", "app.export", "export")]

    def __init__(self, rec: st.TrialRecord):
        super().__init__()
        self.rec = rec

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static(D.detail_text(self.rec), id="detail-text")
            if D.history(self.rec):
                yield PlotextPlot(id="curve")
        yield Footer()

    def on_mount(self) -> None:
        hist = D.history(self.rec)
        if hist:
            plt = self.query_one("#curve", PlotextPlot).plt
            ep = [h["epoch"] for h in hist]
            plt.plot(ep, [h["val_top1"] for h in hist], label="val top-1 %", marker="braille")
            plt.plot(ep, [100 * h["train_loss"] / max(1e-9, hist[0]["train_loss"]) for h in hist],
                     label="train loss (% of epoch 1)", marker="braille")
            plt.title("training curve")
            plt.xlabel("epoch")


class TitledTableScreen(Screen):
    """A title over one table, filled in ``on_mount``; ``table_id`` names both (``<id>-title``)."""

    table_id = ""

    def title_text(self) -> str:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(self.title_text(), id=f"{self.table_id}-title")
        yield DataTable(id=self.table_id, cursor_type="row", zebra_stripes=True)
        yield Footer()


class CompareScreen(TitledTableScreen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "back")]
    table_id = "compare"

    def __init__(self, a: st.TrialRecord, b: st.TrialRecord):
        super().__init__()
        self.a, self.b = a, b

    def title_text(self) -> str:
        return f"Compare #{self.a.number} (A) with #{self.b.number} (B)"

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_columns("field", f"A #{self.a.number}", f"B #{self.b.number}", "B - A")
        for row in D.compare_rows(self.a, self.b):
            t.add_row(*row)


class AblationScreen(TitledTableScreen):
    BINDINGS = [Binding("escape,q,t", "app.pop_screen", "back")]
    table_id = "ablation"

    def __init__(self, view: D.StudyView):
        super().__init__()
        self.view = view

    def title_text(self) -> str:
        return f"Table 6: paper vs ours ({self.view.name})"

    def on_mount(self) -> None:
        rows = D.ablation_rows(self.view)
        backends = D.backends(self.view)
        t = self.query_one(DataTable)
        t.add_columns("row", "ablation", "paper top-1", "ours top-1", "paper Δ", "ours Δ",
                      *(h for b in backends for h in (f"paper Δ% ({paper.column_for(b, 'table6')})", f"ours {b} Δ%")))
        for r in rows:
            t.add_row(str(r["row"]), r["ablation"][:34], fmt(r["paper_top1"]), fmt(r["top1"], 2),
                      fmt(r["paper_top1_delta"]), fmt(r["top1_delta"], 2),
                      *(fmt(r.get(f"{b}{k}")) for b in backends for k in ("_paper_delta_pct", "_delta_pct")))


class MainScreen(Screen):
    AUTO_FOCUS = "#trials"
    BINDINGS = [
        Binding("question_mark", "app.push_screen('help')", "help"),
        Binding("enter", "app.open", "detail", show=False),
        Binding("a", "app.filter('all')", "all"), Binding("f", "app.filter('feasible')", "feasible"),
        Binding("p", "app.filter('front')", "front"), Binding("x", "app.filter('failed')", "failed"),
        Binding("slash", "app.search", "filter text"), Binding("s", "app.sort", "sort"),
        Binding("m", "app.mark", "mark"), Binding("c", "app.compare", "compare"), Binding("e", "app.export", "export"),
        Binding("y", "app.copy_yaml", "copy YAML", show=False), Binding("t", "app.ablation", "Table 6", show=False),
        Binding("o", "app.swap_axes", "axes", show=False), Binding("r", "app.reload", "reload", show=False),
        Binding("q", "app.quit", "quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("", id="summary")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield Input(placeholder="filter knobs, e.g. H=4/ (press / )", id="query")
                yield DataTable(id="trials", cursor_type="row", zebra_stripes=True)
            yield PlotextPlot(id="plot")
        yield Footer()
