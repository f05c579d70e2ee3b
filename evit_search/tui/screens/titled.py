"""A title over one table: the base of the compare and Table 6 screens."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label


class TitledTableScreen(Screen):
    """A title over one table, filled in ``on_mount``; ``table_id`` names both (``<id>-title``)."""

    table_id = ""
    DEFAULT_CSS = "TitledTableScreen Label { padding: 0 1; height: auto; }"

    def title_text(self) -> str:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(self.title_text(), id=f"{self.table_id}-title")
        yield DataTable(id=self.table_id, cursor_type="row", zebra_stripes=True)
        yield Footer()
