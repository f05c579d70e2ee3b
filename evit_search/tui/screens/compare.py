"""Two trials side by side: their measured configs' differences and their measurements."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable

from ... import storage as st
from ..trial_text import compare_rows
from .titled import TitledTableScreen


class CompareScreen(TitledTableScreen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "back")]
    table_id = "compare"

    def __init__(self, a: st.TrialRecord, b: st.TrialRecord):
        super().__init__()
        self.a, self.b = a, b

    def title_text(self) -> str:
        return f"Compare #{self.a.number} (A, marked) with #{self.b.number} (B): measured configs and measurements"

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_columns("field", f"A #{self.a.number}", f"B #{self.b.number}", "B - A")
        for row in compare_rows(self.a, self.b):
            t.add_row(*row)
