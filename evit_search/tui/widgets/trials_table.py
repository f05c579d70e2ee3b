"""The trials table: it owns what it shows (filter, text filter, sort), marks the front and the
paper's models, and shows the sort as an arrow in its header. Keys: ``<`` ``>`` pick the sort
column, ``s`` reverses, a header click sorts by that column; ``a`` ``f`` ``p`` ``x`` filter, esc
clears a text filter. Posts :class:`TrialsTable.Highlighted`, :class:`TrialsTable.Chosen` and
:class:`TrialsTable.StateChanged`.

A large study's rows are added a screenful first and the rest a chunk per draw: the table measures
every cell it is given before it draws, so 500 trials (9,000 cells) at once would hold the first
screen back. What it shows (``shown``: every row, filtered and sorted) is complete at once; keys
and selections that reach past the added rows add the rest first."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from ... import storage as st
from .. import view as D
from ..messages import TrialMessage

FILTER = Binding.Group("filter")
SORT = Binding.Group("sort")


class TrialsTable(DataTable):
    FIRST_ROWS = 60  # added before the first draw (more when the window is taller)
    CHUNK_ROWS = 100  # then this many after each draw
    BINDINGS = [
        Binding("a", "filter('all')", "all", group=FILTER), Binding("f", "filter('feasible')", "feasible", group=FILTER),
        Binding("p", "filter('front')", "front", group=FILTER), Binding("x", "filter('failed')", "failed", group=FILTER),
        Binding("less_than_sign", "sort_column(-1)", "previous column", group=SORT),
        Binding("greater_than_sign", "sort_column(1)", "next column", group=SORT),
        Binding("s", "reverse", "reverse", group=SORT),
        Binding("escape", "clear_text", "clear text", show=False),
    ]

    class Highlighted(TrialMessage):
        """The cursor is on another trial."""

    class Chosen(TrialMessage):
        """Enter (or a click) on a row."""

    class StateChanged(Message):
        def __init__(self, state: D.TableState, markup: str):
            super().__init__()
            self.state, self.markup = state, markup

    def __init__(self, **kw):
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.state = D.TableState()
        self.view: D.StudyView | None = None
        self.shown: list[st.TrialRecord] = []
        self.keys: list[tuple[str, str]] = list(D.COLUMNS)
        self._fill_generation = 0  # a refill makes the chunks still pending from an earlier one stop

    # ------------------------------------------------------------------ what it shows
    def show_view(self, view: D.StudyView) -> None:
        self.view = view
        self.keys = D.columns(view)
        self.refill()

    def refill(self) -> None:
        """Columns (with the sort arrow) and rows from the view and the state; the cursor stays
        on the same trial when it is still shown."""
        if self.view is None:
            return
        current = self.current
        self.clear(columns=True)
        for key, label in self.keys:
            self.add_column(D.header(key, label, self.state), key=key, width=D.width(key, label))
        self.shown = self.state.rows(self.view)
        numbers = [r.number for r in self.shown]
        at = numbers.index(current) if current in numbers else 0
        self._fill_generation += 1
        self._fill(at + max(self.FIRST_ROWS, self.app.size.height))
        if current in numbers:
            self.move_cursor(row=at)
        self._fill_after_draw(self._fill_generation)
        headers = dict(self.keys)
        self.post_message(self.StateChanged(self.state, D.filter_line(self.state, headers, len(self.shown),
                                                                      len(self.view.records))))
        self.post_message(self.Highlighted(self.current))

    def _fill(self, until: int) -> None:
        """Add the shown rows up to ``until`` (in the order shown, after those already added)."""
        for r in self.shown[self.row_count:until]:
            cells = [D.text(r, k) for k, _ in self.keys]
            style = "bold #ff5f5f" if r.number in self.view.front else "bold #ffd75f" if r.paper_model else None
            self.add_row(*(Text(c, style=style) if style else c for c in cells), key=str(r.number))

    def _fill_after_draw(self, generation: int) -> None:
        if generation == self._fill_generation and self.row_count < len(self.shown):
            self.call_after_refresh(self._fill_chunk, generation)

    def _fill_chunk(self, generation: int) -> None:
        if generation == self._fill_generation:
            self._fill(self.row_count + self.CHUNK_ROWS)
            self._fill_after_draw(generation)

    @property
    def filled(self) -> bool:
        """Whether every shown row has been added to the table."""
        return self.row_count == len(self.shown)

    def set_state(self, state: D.TableState) -> None:
        if state != self.state:
            self.state = state
            self.refill()

    @property
    def current(self) -> int | None:
        """The trial under the cursor."""
        if not self.shown or self.cursor_row is None or not 0 <= self.cursor_row < len(self.shown):
            return None
        return self.shown[self.cursor_row].number

    def select(self, number: int) -> None:
        """Put the cursor on a trial; filters that hide it are cleared first."""
        if number not in [r.number for r in self.shown]:
            self.set_state(D.TableState(sort_key=self.state.sort_key, reverse=self.state.reverse))
        numbers = [r.number for r in self.shown]
        if number in numbers:
            self._fill(numbers.index(number) + self.app.size.height)
            self.move_cursor(row=numbers.index(number))

    # ------------------------------------------------------------------ keys and clicks
    def action_filter(self, mode: str) -> None:
        """``a`` shows every trial: it clears the text filter too."""
        query = "" if mode == "all" else self.state.query
        self.set_state(D.TableState(mode, query, self.state.sort_key, self.state.reverse))

    def set_query(self, text: str) -> None:
        self.set_state(D.TableState(self.state.mode, text, self.state.sort_key, self.state.reverse))

    def action_clear_text(self) -> None:
        self.set_query("")

    def action_sort_column(self, step: int) -> None:
        keys = [k for k, _ in self.keys]
        key = keys[(keys.index(self.state.sort_key) + step) % len(keys)] if self.state.sort_key in keys else keys[0]
        self.set_state(D.TableState(self.state.mode, self.state.query, key, False))

    def action_page_down(self) -> None:
        self._fill(self.cursor_row + 2 * self.app.size.height)
        super().action_page_down()

    def action_scroll_bottom(self) -> None:
        self._fill(len(self.shown))
        super().action_scroll_bottom()

    def action_reverse(self) -> None:
        self.set_state(self.state.sorted_by(self.state.sort_key))

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.set_state(self.state.sorted_by(event.column_key.value))

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.post_message(self.Highlighted(self.current))

    @on(DataTable.RowSelected)
    def _chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if self.current is not None:
            self.post_message(self.Chosen(self.current))
