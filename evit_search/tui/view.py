"""What the TUI shows, computed from stored records: no Textual, no torch imports here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .. import storage as st
from ..reproduce.table6_compare import comparison

# Fixed widths: auto-sized DataTable columns are measured lazily, so what a screen shows would
# depend on timing; stage columns fit three stages of three digits.
WIDTHS = {"number": 4, "status": 10, "feasible": 4, "accuracy": 7, "ratio": 6, "images_per_s": 7, "params_m": 8,
          "flops_m": 7, "C": 11, "L": 5, "H": 5, "N": 5, "QK": 8, "V": 14, "FFN": 11}

COLUMNS: list[tuple[str, str]] = [  # (key, header)
    ("number", "#"), ("status", "status"), ("feasible", "feas"), ("accuracy", "top-1 %"), ("ratio", "ratio"),
    ("images_per_s", "img/s"), ("params_m", "params M"), ("flops_m", "FLOPs M"), ("C", "C"), ("L", "L"), ("H", "H"),
    ("N", "N"), ("QK", "QK"), ("V", "V"), ("FFN", "FFN"),
]
FILTERS = ("all", "feasible", "front", "failed")
# plot axes the user can cycle through (x, y): every measured objective pairs with accuracy, and cost with speed
AXES = [("ratio", "accuracy"), ("images_per_s", "accuracy"), ("flops_m", "accuracy"), ("params_m", "accuracy"),
        ("flops_m", "ratio"), ("params_m", "ratio")]


def backends(view: "StudyView") -> list[str]:
    """Backends measured in the study, the primary (first seen) first."""
    seen: list[str] = []
    for r in view.records:
        for b in r.throughput:
            if b not in seen:
                seen.append(b)
    return seen


def columns(view: "StudyView") -> list[tuple[str, str]]:
    """The table's columns: img/s and ratio of the primary backend, then of every other one."""
    extra = [(f"{kind}:{b}", f"{b} {label}") for b in backends(view)[1:]
             for kind, label in (("ips", "img/s"), ("ratio", "ratio"))]
    return COLUMNS[:8] + extra + COLUMNS[8:]


@dataclass
class StudyView:
    name: str
    kind: str
    attrs: dict
    records: list[st.TrialRecord]
    front: set[int] = field(default_factory=set)


def load_view(name: str, url: str | None) -> StudyView:
    store = st.load_study(name, url)
    s = store.summary()
    return StudyView(name, store.kind, store.attrs, s.records, {r.number for r in s.front})


def width(key: str) -> int:
    return WIDTHS.get(key, 9)


def value(r: st.TrialRecord, key: str):
    """A measured quantity of a trial, for plots (None when not measured)."""
    if key in ("ratio", "accuracy"):
        return getattr(r, key)
    if key == "images_per_s":
        return r.images_per_s
    return (r.cost or {}).get(key)


def cell(r: st.TrialRecord, key: str):
    """Sortable raw value of a column."""
    if ":" in key:
        kind, b = key.split(":", 1)
        m = r.throughput.get(b) or {}
        return m.get("images_per_s" if kind == "ips" else "ratio_to_reference")
    if key in ("number", "status", "accuracy", "ratio", "feasible"):
        return getattr(r, key)
    if key == "images_per_s":
        return r.images_per_s
    if key in ("params_m", "flops_m"):
        return (r.cost or {}).get(key)
    return st.stage_values(r.config, dict(st.KNOBS)[key])


def text(r: st.TrialRecord, key: str) -> str:
    v = cell(r, key)
    if v is None:
        return "-"
    if key == "feasible":
        return "yes" if v else "no"
    if isinstance(v, float):
        if ":" in key:
            return f"{v:.1f}" if key.startswith("ips:") else f"{v:.3f}"
        return {"accuracy": f"{v:.2f}", "ratio": f"{v:.3f}", "images_per_s": f"{v:.1f}", "params_m": f"{v:.2f}",
                "flops_m": f"{v:.0f}"}.get(key, f"{v:g}")
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
        hay = f"{r.knob_text()} {r.status} #{r.number} {r.reason or ''}".lower()
        if all(w in hay for w in words):
            out.append(r)
    return out


def sort_records(recs: list[st.TrialRecord], key: str, reverse: bool = False) -> list[st.TrialRecord]:
    """Missing values sort last whatever the direction."""
    present = [r for r in recs if cell(r, key) is not None]
    missing = [r for r in recs if cell(r, key) is None]
    return sorted(present, key=lambda r: cell(r, key), reverse=reverse) + missing


def detail_text(r: st.TrialRecord) -> str:
    """The candidate detail: config per stage, measurements with spread and environment,
    training summary, failure reason."""
    lines = [f"[b]Trial #{r.number}[/b]  status [b]{r.status}[/b]" + (f"  (duplicate of #{r.duplicate_of})" if r.duplicate_of is not None else "")]
    if r.reason:
        lines.append(f"[red]reason:[/red] {r.reason}")
    if r.label:
        lines.append(f"row {r.row}: {r.label}")
    cfg = r.config or {}
    if cfg:
        lines.append("")
        lines.append("stage  C    L  H  QK  V     N  FFN  window  kernels")
        for i, s in enumerate(cfg.get("stages", [])):
            lines.append(f"{i:<6} {s['dim']:<4} {s['depth']:<2} {s['num_heads']:<2} {s['key_dim']:<3} {s['v_ratio']:<5g} "
                         f"{s['n_ffn']:<2} {s['ffn_ratio']:<4g} {s['window_size']:<7} {s['kernels'][:s['num_heads']]}")
        sw = {k: cfg.get(k) for k in ("block", "attention", "cascade", "qkv", "token_dw", "norm", "act")}
        lines.append("switches: " + ", ".join(f"{k}={v}" for k, v in sw.items()))
        lines.append(f"input {cfg.get('in_chans')}x{cfg.get('img_size')}x{cfg.get('img_size')}, {cfg.get('num_classes')} classes; arch id {r.arch_id}")
    if r.cost:
        lines.append(f"params {r.cost['params_m']:.3f} M, FLOPs {r.cost['flops_m']:.1f} M (fused, fvcore)")
    for b, m in r.throughput.items():
        lines.append(f"{b}: {m.get('images_per_s', 0):.1f} img/s (min {m.get('images_per_s_min', 0):.1f}, max "
                     f"{m.get('images_per_s_max', 0):.1f}, spread {100 * (m.get('spread') or 0):.1f} %, {m.get('rounds')} rounds, "
                     f"batch {m.get('batch_size')}), ratio {m.get('ratio_to_reference') or 0:.3f} "
                     f"[{m.get('ratio_ci_low') or 0:.3f}, {m.get('ratio_ci_high') or 0:.3f}]")
    for b, m in r.reference_throughput.items():
        lines.append(f"reference on {b}: {m.get('images_per_s', 0):.1f} img/s (same session)")
    if r.constraints:
        lines.append("constraints (<= 0 met): " + ", ".join(f"{k} {v:+.3f}" for k, v in r.constraints.items()))
    if r.train:
        t = r.train
        if t.get("top1") is not None:
            lines.append(f"proxy: top-1 {t['top1']:.2f} %, top-5 {t.get('top5') or 0:.2f} % ({t.get('protocol')}, "
                         f"{t.get('dataset')}, seed {t.get('seed')}, {t.get('wall_s', 0):.0f} s, "
                         f"{t.get('train_images_per_s') or 0:.0f} img/s)")
    if r.env:
        e = r.env
        lines.append(f"env: {e.get('cpu_model')}, {e.get('threads')} thread(s), {e.get('allocator')}, torch "
                     f"{e.get('torch_version')}, onnxruntime {e.get('onnxruntime_version')}, host {e.get('host')}"
                     + (f", GPU {e.get('gpu_name')}" if e.get("gpu_name") else ""))
    return "\n".join(lines)


def history(r: st.TrialRecord) -> list[dict]:
    return list((r.train or {}).get("history") or [])


def compare_rows(a: st.TrialRecord, b: st.TrialRecord) -> list[tuple[str, str, str, str]]:
    """(field, a, b, delta) for config differences and measurement deltas."""
    rows = []
    ca, cb = a.config or {}, b.config or {}
    for i, (sa, sb) in enumerate(zip(ca.get("stages", []), cb.get("stages", []))):
        for k in sa:
            if sa.get(k) != sb.get(k):
                rows.append((f"stages[{i}].{k}", str(sa.get(k)), str(sb.get(k)), ""))
    for k in ("block", "attention", "cascade", "qkv", "token_dw", "norm", "act", "img_size"):
        if ca.get(k) != cb.get(k):
            rows.append((k, str(ca.get(k)), str(cb.get(k)), ""))

    def num(label, x, y, fmt="{:.3f}"):
        if x is None and y is None:
            return
        d = "" if x is None or y is None else (fmt.format(y - x) if not x else f"{fmt.format(y - x)} ({100 * (y / x - 1):+.1f} %)")
        rows.append((label, "-" if x is None else fmt.format(x), "-" if y is None else fmt.format(y), d))

    num("proxy top-1 %", a.accuracy, b.accuracy, "{:.2f}")
    num("throughput ratio", a.ratio, b.ratio)
    num("img/s", a.images_per_s, b.images_per_s, "{:.1f}")
    num("params M", (a.cost or {}).get("params_m"), (b.cost or {}).get("params_m"))
    num("FLOPs M", (a.cost or {}).get("flops_m"), (b.cost or {}).get("flops_m"), "{:.1f}")
    return rows


def ablation_rows(view: StudyView) -> list[dict]:
    """Table 6 view: paper and ours per row, the same comparison as the report."""
    return comparison(view.records)
