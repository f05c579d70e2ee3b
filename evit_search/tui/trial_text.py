"""One trial, or two, as text: the candidate detail, the compare rows and the YAML that ``y``
copies. A trial has two configs: the measured one (throughput, params and FLOPs) and the trained
one (the proxy top-1, usually at a smaller input with fewer classes); every text here says which
is which. No Textual and no torch imports here."""

from __future__ import annotations

import yaml
from rich.markup import escape

from .. import storage as st
from ..reporting.accuracy import delta_text
from ..reporting.pareto import short_model

SWITCHES = ("block", "attention", "cascade", "qkv", "token_dw", "norm", "act")
INPUT = ("img_size", "in_chans", "num_classes")


def trained_config(r: st.TrialRecord) -> tuple[dict | None, str]:
    """The config that was proxy-trained, and where it comes from: stored by the engine with the
    training record, or derived for display from the measured one (None when not trained)."""
    t = r.train or {}
    if not t:
        return None, "not trained"
    if t.get("trained_config"):
        return t["trained_config"], "as stored with the training record"
    given = {k: t[k] for k in INPUT if t.get(k) is not None}
    if not given:
        return None, "not recorded by the engine that trained it: its input size and classes are unknown"
    return {**(r.config or {}), **given}, "derived for display: the measured config with the training record's input"


def input_text(cfg: dict | None) -> str:
    c = cfg or {}
    return f"{c.get('in_chans')}x{c.get('img_size')}x{c.get('img_size')}, {c.get('num_classes')} classes"


def config_diff(a: dict | None, b: dict | None, keys=SWITCHES + INPUT) -> list[tuple[str, str, str]]:
    """(field, a, b) for every stage knob and top-level field that differs."""
    a, b = a or {}, b or {}
    rows = [(f"stages[{i}].{k}", str(sa.get(k)), str(sb.get(k)))
            for i, (sa, sb) in enumerate(zip(a.get("stages", []), b.get("stages", []))) for k in sa if sa.get(k) != sb.get(k)]
    return rows + [(k, str(a.get(k)), str(b.get(k))) for k in keys if a.get(k) != b.get(k)]


def _stages(cfg: dict) -> list[str]:
    lines = ["  stage  C    L  H  QK  V     N  FFN  window  kernels"]
    for i, s in enumerate(cfg.get("stages", [])):
        lines.append(f"  {i:<6} {s['dim']:<4} {s['depth']:<2} {s['num_heads']:<2} {s['key_dim']:<3} {s['v_ratio']:<5g} "
                     f"{s['n_ffn']:<2} {s['ffn_ratio']:<4g} {s['window_size']:<7} {s['kernels'][:s['num_heads']]}")
    lines.append("  switches: " + ", ".join(f"{k}={cfg.get(k)}" for k in SWITCHES))
    return lines


def _configs(r: st.TrialRecord) -> list[str]:
    cfg = r.config or {}
    lines = [f"[b]Measured config[/b] (its throughput, params and FLOPs were measured): input {input_text(cfg)}; "
             f"arch id {r.arch_id}", *_stages(cfg)]
    trained, how = trained_config(r)
    if trained is None:
        return lines + [f"[b]Trained config[/b] (the proxy top-1 comes from it): {how}"]
    lines.append(f"[b]Trained config[/b] (the proxy top-1 comes from it; {how}): input {input_text(trained)}")
    other = config_diff(cfg, trained, SWITCHES)
    if other:
        lines += [f"  differs from the measured config in {f}: {b} (measured {a})" for f, a, b in other]
    else:
        lines.append("  stages and switches as measured")
    return lines


def detail_text(r: st.TrialRecord, on_front: bool = False) -> str:
    """The candidate detail (markup): both configs, measurements with spread and environment,
    training summary, failure reason."""
    tags = ("  [b red]on the front[/b red]" if on_front else "") + \
           (f"  paper model [b]{short_model(r.paper_model)}[/b] ({r.paper_model})" if r.paper_model else "")
    lines = [f"[b]Trial #{r.number}[/b]  status [b]{r.status}[/b]{tags}"
             + (f"  (duplicate of #{r.duplicate_of})" if r.duplicate_of is not None else "")]
    if r.reason:
        lines.append(f"[red]reason:[/red] {escape(r.reason)}")
    if r.label:
        lines.append(f"row {r.row}: {escape(r.label)}")
    if r.config:
        lines += ["", *_configs(r)]
    lines += ["", "[b]Measured[/b] (the measured config)"]
    if r.cost:
        lines.append(f"  params {r.cost['params_m']:.3f} M, FLOPs {r.cost['flops_m']:.1f} M (fused, fvcore)")
    for b, m in r.throughput.items():
        lines.append(f"  {b}: {m.get('images_per_s', 0):.1f} img/s (min {m.get('images_per_s_min', 0):.1f}, max "
                     f"{m.get('images_per_s_max', 0):.1f}, spread {100 * (m.get('spread') or 0):.1f} %, {m.get('rounds')} "
                     f"rounds, batch {m.get('batch_size')}), ratio {m.get('ratio_to_reference') or 0:.3f} "
                     f"[{m.get('ratio_ci_low') or 0:.3f}, {m.get('ratio_ci_high') or 0:.3f}]")
    for b, m in r.reference_throughput.items():
        lines.append(f"  reference on {b}: {m.get('images_per_s', 0):.1f} img/s, measured in this trial's own session: "
                     f"the ratio is to it")
    if r.constraints:
        lines.append("  constraints (<= 0 met): " + ", ".join(f"{k} {v:+.3f}" for k, v in r.constraints.items()))
    t = r.train or {}
    if r.delta is not None:
        how = " (95 % interval from the reference's seed noise; one run of this candidate)" if r.delta.low is not None else ""
        lines += ["", f"[b]Accuracy against the reference[/b]: {delta_text(r.delta)}{how}"]
    if r.rungs:
        lines += ["", "[b]Successive halving[/b] (rungs: fractions of the protocol's training)"]
        lines += [f"  rung {e['rung']}: {100 * e['fraction']:.0f} % of the training, val top-1 {e['top1']:.2f} %, "
                  f"{e.get('seconds') or 0:.0f} s" for e in r.rungs]
    if t.get("top1") is not None:
        ci = (f", 95 % interval {r.accuracy_ci[0]:.2f}-{r.accuracy_ci[1]:.2f} from the seed noise" if r.accuracy_ci
              else "")
        lines += ["", "[b]Proxy training[/b] (the trained config)",
                  f"  top-1 {t['top1']:.2f} %{ci}, top-5 {t.get('top5') or 0:.2f} % ({t.get('protocol')}, "
                  f"{t.get('dataset')}, seed {t.get('seed')}, {t.get('wall_s', 0):.0f} s, "
                  f"{t.get('train_images_per_s') or 0:.0f} img/s)"]
    if r.env:
        e = r.env
        lines += ["", f"env: {e.get('cpu_model')}, {e.get('threads')} thread(s), {e.get('allocator')}, torch "
                      f"{e.get('torch_version')}, onnxruntime {e.get('onnxruntime_version')}, host {e.get('host')}"
                      + (f", GPU {e.get('gpu_name')}" if e.get("gpu_name") else "")]
    return "\n".join(lines)


def config_yaml(r: st.TrialRecord) -> str:
    """Both configs as one YAML document, with comments that say which is which."""
    trained, how = trained_config(r)
    head = [f"# trial {r.number}" + (f" ({r.paper_model})" if r.paper_model else ""),
            f"# measured: its throughput, params and FLOPs were measured ({input_text(r.config)})",
            f"# trained: the proxy top-1 comes from it ({input_text(trained) + '; ' if trained else ''}{how})"]
    return "\n".join(head) + "\n" + yaml.safe_dump({"measured": r.config, "trained": trained}, sort_keys=False)


def history(r: st.TrialRecord) -> list[dict]:
    return list((r.train or {}).get("history") or [])


def compare_rows(a: st.TrialRecord, b: st.TrialRecord) -> list[tuple[str, str, str, str]]:
    """(field, a, b, delta) for measured-config differences and measurement deltas."""
    rows = [(f, x, y, "") for f, x, y in config_diff(a.config, b.config)]

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
