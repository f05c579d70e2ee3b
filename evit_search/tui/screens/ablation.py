"""Table 6: the paper's ablations beside ours, the same comparison as the ablation report."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable

from ..view import StudyView, backends
from .titled import TitledTableScreen


class AblationScreen(TitledTableScreen):
    BINDINGS = [Binding("escape,q,t", "app.pop_screen", "back")]
    table_id = "ablation"

    def __init__(self, view: StudyView):
        super().__init__()
        self.view = view

    def title_text(self) -> str:
        return f"Table 6: paper vs ours ({self.view.name})"

    def on_mount(self) -> None:
        from ...reporting.markdown import fmt  # these bring pandas: loaded when Table 6 opens, not at start-up
        from ...reproduce import paper
        from ...reproduce.table6_compare import comparison, delta_cell, top1_text

        bs = backends(self.view)
        t = self.query_one(DataTable)
        t.add_columns("row", "ablation", "paper top-1", "ours top-1 ± SD (n)", "paper Δ", "ours Δ [95 % CI]",
                      *(h for b in bs for h in (f"paper Δ% ({paper.column_for(b, 'table6')})", f"ours {b} Δ%")))
        for r in comparison(self.view.records):
            t.add_row(str(r["row"]), r["ablation"][:34], fmt(r["paper_top1"]), top1_text(r),
                      fmt(r["paper_top1_delta"]), delta_cell(r),
                      *(fmt(r.get(f"{b}{k}")) for b in bs for k in ("_paper_delta_pct", "_delta_pct")))
