"""What the TUI's main screen shows, computed from stored records: the study view, the trials
table's columns, cells, filter and sort, the summary and the filter line. No Textual and no
torch imports here."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from rich.markup import escape

from .. import storage as st
from ..reporting.accuracy import delta_text, delta_to_reference, reference_noise
from ..reporting.pareto import ParetoInfo, pareto_info, reference_sessions, short_model

# Fixed widths: auto-sized DataTable columns are measured lazily, so what a screen shows would
# depend on timing; stage columns fit three stages of three digits.
WIDTHS = {"number": 4, "accuracy": 7, "delta": 8, "ratio": 6, "fidelity": 8, "status": 10, "paper": 5, "feasible": 4, "images_per_s": 7,
          "params_m": 8, "flops_m": 7, "C": 11, "L": 5, "H": 5, "N": 5, "QK": 8, "V": 14, "FFN": 11}
# (key, header): what a narrow window shows first comes first
COLUMNS: list[tuple[str, str]] = [
    ("number", "#"), ("accuracy", "top-1 %"), ("delta", "Δ ref"), ("ratio", "ratio"), ("status", "status"),
    ("fidelity", "trained"), ("paper", "paper"),
    ("feasible", "feas"), ("images_per_s", "img/s"), ("params_m", "params M"), ("flops_m", "FLOPs M"), ("C", "C"),
    ("L", "L"), ("H", "H"), ("N", "N"), ("QK", "QK"), ("V", "V"), ("FFN", "FFN"),
]
FILTERS = {"all": "all", "feasible": "feasible", "front": "the front", "failed": "failed"}
ARROW = {False: "▲", True: "▼"}  # ascending, descending


@dataclass
class StudyView:
    name: str
    kind: str
    attrs: dict
    records: list[st.TrialRecord]
    front: set[int] = field(default_factory=set)

    def record(self, number: int | None) -> st.TrialRecord | None:
        return next((r for r in self.records if r.number == number), None)

    def pareto(self, axes: tuple[str, str]) -> ParetoInfo:
        return pareto_info(self.records, self.front, self.attrs, axes)


def load_view(name: str, url: str | None) -> StudyView:
    store = st.load_study(name, url)
    s = store.summary()
    attrs = store.attrs
    noise = reference_noise(attrs)
    for r in s.records:
        r.delta = delta_to_reference(r, noise)
    return StudyView(name, store.kind, attrs, s.records, {r.number for r in s.front})


def backends(view: StudyView) -> list[str]:
    """Backends measured in the study, the primary (first seen) first."""
    seen: list[str] = []
    for r in view.records:
        for b in r.throughput:
            if b not in seen:
                seen.append(b)
    return seen


def columns(view: StudyView) -> list[tuple[str, str]]:
    """The table's columns: img/s and ratio of the primary backend, then of every other one."""
    extra = [(f"{kind}:{b}", f"{b} {label}") for b in backends(view)[1:]
             for kind, label in (("ips", "img/s"), ("ratio", "ratio"))]
    cut = [k for k, _ in COLUMNS].index("C")
    return COLUMNS[:cut] + extra + COLUMNS[cut:]


def width(key: str, header: str) -> int:
    """Room for the widest value and for the header with its sort arrow."""
    return max(WIDTHS.get(key, 9), len(header) + 2)


def header(key: str, label: str, state: "TableState") -> str:
    return f"{label} {ARROW[state.reverse]}" if key == state.sort_key else label


def cell(r: st.TrialRecord, key: str):
    """Sortable raw value of a column."""
    if ":" in key:
        kind, b = key.split(":", 1)
        m = r.throughput.get(b) or {}
        return m.get("images_per_s" if kind == "ips" else "ratio_to_reference")
    if key in ("number", "status", "accuracy", "ratio", "feasible"):
        return getattr(r, key)
    if key == "paper":
        return short_model(r.paper_model) if r.paper_model else None
    if key == "delta":
        return r.delta.delta if r.delta is not None else None
    if key == "fidelity":  # the fraction of the protocol's training behind the accuracy
        return r.fidelity if r.accuracy is not None else None
    if key == "images_per_s":
        return r.images_per_s
    if key in ("params_m", "flops_m"):
        return (r.cost or {}).get(key)
    return st.stage_values(r.config, dict(st.KNOBS)[key])


def text(r: st.TrialRecord, key: str) -> str:
    v = cell(r, key)
    if v is None:
        return "-" if key != "paper" else ""
    if key == "feasible":
        return "yes" if v else "no"
    if key == "delta":  # the difference and its verdict: ↑ better, ↓ worse, ≈ inside the seed noise
        return delta_text(r.delta, short=True)
    if key == "fidelity":
        return f"{100 * v:.0f} %" + (f" r{r.rung}" if r.rung is not None else "")
    if isinstance(v, float):
        if ":" in key:
            return f"{v:.1f}" if key.startswith("ips:") else f"{v:.3f}"
        return {"accuracy": f"{v:.2f}", "ratio": f"{v:.3f}", "images_per_s": f"{v:.1f}", "params_m": f"{v:.2f}",
                "flops_m": f"{v:.0f}" if v >= 10 else f"{v:.1f}"}.get(key, f"{v:g}")
    return str(v)


def filtered(view: StudyView, mode: str = "all", query: str = "") -> list[st.TrialRecord]:
    """``mode``: all | feasible | front | failed; ``query``: words that must all appear in the
    trial's knobs/status text (e.g. ``H=4/`` or ``C=96``)."""
    keep: Callable[[st.TrialRecord], bool] = {
        "all": lambda r: True,
        "feasible": lambda r: r.feasible is True,
        "front": lambda r: r.number in view.front,
        "failed": lambda r: r.status == "failed",
    }[mode]
    words = query.lower().split()
    out = []
    for r in view.records:
        if not keep(r):
            continue
        paper = f"{r.paper_model} {short_model(r.paper_model)}" if r.paper_model else ""
        hay = f"{r.knob_text()} {r.status} #{r.number} {r.reason or ''} {paper}".lower()
        if all(w in hay for w in words):
            out.append(r)
    return out


def sort_records(recs: list[st.TrialRecord], key: str, reverse: bool = False) -> list[st.TrialRecord]:
    """Missing values sort last whatever the direction."""
    present = [r for r in recs if cell(r, key) is not None]
    missing = [r for r in recs if cell(r, key) is None]
    return sorted(present, key=lambda r: cell(r, key), reverse=reverse) + missing


@dataclass(frozen=True)
class TableState:
    """What the trials table shows: a filter, a text filter and a sort."""

    mode: str = "all"
    query: str = ""
    sort_key: str = "number"
    reverse: bool = False

    def rows(self, view: StudyView) -> list[st.TrialRecord]:
        return sort_records(filtered(view, self.mode, self.query), self.sort_key, self.reverse)

    def sorted_by(self, key: str) -> "TableState":
        """Sort by ``key``; again on the same key reverses."""
        return replace(self, sort_key=key, reverse=not self.reverse if key == self.sort_key else False)


def filter_line(state: TableState, headers: dict[str, str], shown: int, total: int) -> str:
    """The line over the table: what it shows and how it is sorted (markup)."""
    text = f', text [b]"{escape(state.query)}"[/b] (esc clears)' if state.query else ""
    return (f"[b]{shown}[/b] of {total} trials: [b]{FILTERS[state.mode]}[/b]{text} · sort: "
            f"[b]{escape(headers.get(state.sort_key, state.sort_key))} {ARROW[state.reverse]}[/b]")


def summary(view: StudyView) -> str:
    """The study at a glance (markup): counts, front, budget, then what every ratio is relative to."""
    counts = st.status_counts(view.records)
    ref = (view.attrs.get("reference_result") or {}).get("top1")
    ref_txt = f" (proxy {ref:.2f} %)" if ref is not None else ""
    return (f"[b]{escape(view.name)}[/b] ({view.kind}) · {len(view.records)} trials: " +
            ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) +
            f" · [b #ff5f5f]front {len(view.front)}[/b #ff5f5f] · budget {view.attrs.get('budget', '-')} vs "
            f"{short_model(view.attrs.get('reference', '-'))}{ref_txt} · " + reference_sessions(view.records, view.attrs).text())
