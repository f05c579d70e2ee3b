"""The line over the trials table: what it shows and how it is sorted, always visible, and the
text filter's input, shown while it is edited. Posts :class:`FilterBar.QueryChanged`."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static


class FilterBar(Vertical):
    DEFAULT_CSS = """
    FilterBar { height: auto; }
    FilterBar #filter-line { height: auto; padding: 0 1; background: $boost; }
    FilterBar Input { height: 1; border: none; padding: 0 1; display: none; }
    FilterBar.-editing Input { display: block; }
    """
    BINDINGS = [Binding("escape", "clear", "clear text", show=False)]

    class QueryChanged(Message):
        def __init__(self, text: str):
            super().__init__()
            self.text = text

    class Done(Message):
        """The user left the input (enter or esc)."""

    def compose(self) -> ComposeResult:
        yield Static("", id="filter-line")
        yield Input(placeholder="knobs, status or reason, e.g. H=4/ or C=96 (enter: keep, esc: clear)", id="query")

    def show_state(self, markup: str, query: str) -> None:
        self.query_one("#filter-line", Static).update(markup)
        box = self.query_one(Input)
        if box.value != query:
            box.value = query

    def edit(self) -> None:
        self.add_class("-editing")
        self.query_one(Input).focus()

    def action_clear(self) -> None:
        self.query_one(Input).value = ""
        self._leave()

    def _leave(self) -> None:
        self.remove_class("-editing")
        self.post_message(self.Done())

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.QueryChanged(event.value))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._leave()
