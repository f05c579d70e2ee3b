"""The main screen: the study's summary, the filter line, the trials table and the Pareto plot.
It wires its widgets (a highlighted row selects the plot's point, a clicked point moves the
table's cursor) and holds the keys that open other screens."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from ... import storage as st
from .. import view as D
from ..widgets import FilterBar, ParetoPlot, TrialsTable
from .trial_actions import TrialActions

COMPARE = Binding.Group("compare")


class MainScreen(TrialActions, Screen):
    AUTO_FOCUS = "#trials"
    # the table and the plot share the width by the window's: the plot gets more of a narrow one
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-normal"), (180, "-wide")]
    BINDINGS = [
        Binding("slash", "search", "text"),
        Binding("enter", "open", "detail", show=False),
        Binding("m", "mark", "mark", group=COMPARE), Binding("c", "compare", "compare", group=COMPARE),
        Binding("o", "axes", "axes"),
        Binding("e", "export", "export"), Binding("y", "copy_yaml", "YAML", show=False),
        Binding("question_mark", "app.push_screen('help')", "keys"), Binding("q", "app.quit", "quit"),
        Binding("t", "ablation", "Table 6", show=False), Binding("r", "app.reload", "reload", show=False),
    ]

    def __init__(self):
        super().__init__()
        self.view: D.StudyView | None = None
        self.marked: int | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading the study ...", id="summary")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield FilterBar()
                yield TrialsTable(id="trials")
            yield ParetoPlot(id="plot")
        yield Footer(compact=True, show_command_palette=False)

    @property
    def table(self) -> TrialsTable:
        return self.query_one(TrialsTable)

    @property
    def plot(self) -> ParetoPlot:
        return self.query_one(ParetoPlot)

    def show_view(self, view: D.StudyView) -> None:
        """A new read of the study (the App's loader hands it over)."""
        self.view = view
        if self.is_mounted:
            self._show()

    def on_mount(self) -> None:
        if self.view is not None:  # read before the screen was up
            self._show()

    def _show(self) -> None:
        self.query_one("#summary", Static).update(D.summary(self.view))
        self.table.show_view(self.view)
        self.plot.show(self.view)

    def trial(self) -> st.TrialRecord | None:
        return self.view.record(self.table.current) if self.view else None

    # ------------------------------------------------------------------ the widgets' messages
    @on(TrialsTable.Highlighted)
    def _highlighted(self, event: TrialsTable.Highlighted) -> None:
        self.plot.select(event.number)

    @on(TrialsTable.Chosen)
    def _chosen(self, event: TrialsTable.Chosen) -> None:
        self.action_open()

    @on(TrialsTable.StateChanged)
    def _state(self, event: TrialsTable.StateChanged) -> None:
        self.query_one(FilterBar).show_state(event.markup, event.state.query)

    @on(ParetoPlot.PointClicked)
    def _clicked(self, event: ParetoPlot.PointClicked) -> None:
        self.table.select(event.number)
        self.table.focus()

    @on(FilterBar.QueryChanged)
    def _query(self, event: FilterBar.QueryChanged) -> None:
        self.table.set_query(event.text)

    @on(FilterBar.Done)
    def _query_done(self, event: FilterBar.Done) -> None:
        self.table.focus()

    # ------------------------------------------------------------------ keys
    def action_search(self) -> None:
        self.query_one(FilterBar).edit()

    def action_open(self) -> None:
        from .detail import DetailScreen  # brings plotext: loaded when a detail opens, not at start-up

        rec = self.trial()
        if rec:
            self.app.push_screen(DetailScreen(rec, rec.number in self.view.front))

    def action_mark(self) -> None:
        self.marked = self.table.current
        self.notify(f"marked #{self.marked} for compare; move to another trial and press c")

    def action_compare(self) -> None:
        from .compare import CompareScreen  # not needed for the first screen

        rec, other = self.trial(), self.view.record(self.marked) if self.view else None
        if other is None:
            self.notify("mark a trial with m first, then press c on another one", severity="warning")
        elif rec is None or rec.number == other.number:
            self.notify(f"#{other.number} is marked: move the cursor to another trial, then press c", severity="warning")
        else:
            self.app.push_screen(CompareScreen(other, rec))

    def action_axes(self) -> None:
        x, y = self.plot.next_axes()
        self.notify(f"plot: {y} against {x}")

    def action_ablation(self) -> None:
        from .ablation import AblationScreen  # not needed for the first screen

        if self.view and self.view.kind == "ablation":
            self.app.push_screen(AblationScreen(self.view))
        else:
            self.notify("the Table 6 view is for ablation studies (evit-search ablate)", severity="warning")
