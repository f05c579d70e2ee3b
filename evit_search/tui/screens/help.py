"""Every key of the TUI (the footer shows what fits; this lists all)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
[b]Keys[/b]  (esc closes)
  ↑ ↓ click   move in the trials table
  enter       detail: the measured and trained config, measurements
  < >         sort by the previous / next column (arrow in the header)
  s           reverse the sort;  a header click sorts by that column
  a f p x     all (clears the text filter too), feasible, front, failed
  /           text filter: knobs, status, reason, model ("H=4/", "M3");
              enter keeps it, esc clears it (in the box or on the table)
  m  c        mark a trial; c compares it with the trial under the cursor
  o           the plot's next axes: top-1 or ratio vs img/s, FLOPs, params
  e           export it (config YAML, ONNX, state dict) to ./export/
  y           copy its configs as YAML (measured and trained, marked)
  t           Table 6 view (ablation studies)
  r           reload now (it also reloads every few seconds)
  ?  q        this help;  quit
A click on a point in the plot selects its trial. Each ratio is to the
reference measured in that trial's own session."""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen #help { width: auto; max-width: 100%; height: auto; max-height: 100%; padding: 0 1;
                       background: $panel; border: round $accent; }
    HelpScreen #help Static { width: auto; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(HELP)
