"""The Pareto plot: the front as a staircase of labelled points, the reference, the paper's
models, the budget and a strip for trials without a value, drawn by :mod:`..canvas`. It owns its
axes; a click posts :class:`ParetoPlot.PointClicked` with the trial drawn nearest to it."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widget import Widget

from ...reporting.pareto import AXES
from ..canvas import Drawing, draw
from ..messages import TrialMessage
from ..view import StudyView


class ParetoPlot(Widget):
    DEFAULT_CSS = "ParetoPlot { height: 1fr; padding: 0 0 0 1; }"

    class PointClicked(TrialMessage):
        """A click on the plot, nearest to this trial's point."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.axes = AXES[0]
        self.view: StudyView | None = None
        self.selected: int | None = None
        self.drawing = Drawing([])
        self._key: tuple | None = None

    def show(self, view: StudyView) -> None:
        self.view = view
        self.refresh()

    def select(self, number: int | None) -> None:
        if number != self.selected:
            self.selected = number
            self.refresh()

    def next_axes(self) -> tuple[str, str]:
        """Cycle through the pairs of measured objectives."""
        self.axes = AXES[(AXES.index(self.axes) + 1) % len(AXES)]
        self.refresh()
        return self.axes

    def render(self) -> Text:
        size = self.content_size
        key = (id(self.view), self.axes, size.width, size.height, self.selected)
        if self.view is None:
            return Text("loading the study ...")
        if key != self._key:  # a redraw of the same picture (focus, hover) reuses it
            self.drawing = draw(self.view.pareto(self.axes), size.width, size.height, self.selected)
            self._key = key
        return Text("\n").join(self.drawing.lines)

    def on_click(self, event: events.Click) -> None:
        at = event.get_content_offset(self)
        number = self.drawing.nearest(at.x, at.y) if at is not None else None
        if number is not None:
            self.post_message(self.PointClicked(number))
