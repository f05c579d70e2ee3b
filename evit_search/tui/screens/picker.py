"""Lists the studies of a storage to pick from; posts :class:`..messages.StudyPicked`."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, OptionList

from ..messages import StudyPicked


class StudyPicker(Screen):
    BINDINGS = [Binding("q", "app.quit", "quit")]

    def __init__(self, studies: list[dict]):
        super().__init__()
        self.studies = studies

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Pick a study (enter):", id="picker-title")
        yield OptionList(*(f"{s['name']}  ({s['kind']})  {s['n_trials']} trials" for s in self.studies), id="picker")
        yield Footer()

    @on(OptionList.OptionSelected)
    def picked(self, event: OptionList.OptionSelected) -> None:
        self.post_message(StudyPicked(self.studies[event.option_index]["name"]))
