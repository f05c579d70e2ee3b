"""One candidate: both configs (measured and trained), measurements with spread and environment,
and the training curve."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual_plotext import PlotextPlot

from ... import storage as st
from ..trial_text import detail_text, history
from .trial_actions import TrialActions


class DetailScreen(TrialActions, Screen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "back"), Binding("y", "copy_yaml", "copy YAML"),
                Binding("e", "export", "export")]
    DEFAULT_CSS = """
    DetailScreen #detail-text { padding: 0 1; }
    DetailScreen #curve { height: 16; }
    """

    def __init__(self, rec: st.TrialRecord, on_front: bool = False):
        super().__init__()
        self.rec, self.on_front = rec, on_front

    def trial(self) -> st.TrialRecord:
        return self.rec

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static(detail_text(self.rec, self.on_front), id="detail-text")
            if history(self.rec):
                yield PlotextPlot(id="curve")
        yield Footer()

    def on_mount(self) -> None:
        hist = history(self.rec)
        if hist:
            plt = self.query_one("#curve", PlotextPlot).plt
            ep = [h["epoch"] for h in hist]
            plt.plot(ep, [h["val_top1"] for h in hist], label="val top-1 %", marker="braille")
            plt.plot(ep, [100 * h["train_loss"] / max(1e-9, hist[0]["train_loss"]) for h in hist],
                     label="train loss (% of epoch 1)", marker="braille")
            plt.title("training curve (the trained config)")
            plt.xlabel("epoch")
