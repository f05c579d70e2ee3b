"""Deterministic demo studies written straight into storage (no torch, no training): the TUI's
test fixtures, the report tests' study and the start-up benchmark.

The first 24 trials of :func:`make_study` are the tests' fixture: a front of five trials (two of
them with a seed interval on their accuracy), the paper's M1, M2 and M5 (M5 misses the budget),
infeasible trials, trials that failed in training (measured) and while measuring (not measured),
and a reference whose speed varies a little from session to session. Later trials repeat the
pattern a little less accurate, so the front stays the fixture's.
"""

from .. import storage as st
from ..stats import half_widths

REFERENCE_JITTER = (0.0, 0.025, -0.015, 0.035, -0.03, 0.01)  # the reference's speed, session to session
DEFICIT = (0.0, 2.4, 1.1, 3.6, 0.4, 2.9, 0.0)  # top-1 below the envelope, by trial number mod 7
# trial: (model, C, L, H, ratio, top-1 or None when over budget, params M, FLOPs M as in the paper's Table 2)
PAPER = {0: ("efficientvit_m1", (128, 144, 192), (1, 2, 3), (2, 3, 3), 1.62, 64.1, 3.0, 167.0),
         1: ("efficientvit_m2", (128, 192, 224), (1, 2, 3), (4, 3, 2), 1.38, 65.2, 4.2, 201.0),
         2: ("efficientvit_m5", (192, 288, 384), (1, 3, 4), (3, 3, 4), 0.68, None, 12.4, 522.0)}
TRAINED_INPUT = {"img_size": 64, "in_chans": 1, "num_classes": 10}  # the proxy's data, as the engine trains it


def stage(dim, depth, heads, **kw):
    d = {"dim": dim, "depth": depth, "num_heads": heads, "key_dim": 16, "v_ratio": 1.0, "window_size": 7,
         "kernels": [7, 5, 3, 3], "n_ffn": 1, "ffn_ratio": 2.0}
    d.update(kw)
    return d


def config(dims, depths, heads, **kw):
    c = {"stages": [stage(c, l, h) for c, l, h in zip(dims, depths, heads)], "img_size": 224, "in_chans": 3,
         "num_classes": 1000, "block": "sandwich", "attention": "cga", "cascade": True, "qkv": "reallocated",
         "token_dw": True, "norm": "bn", "act": "relu", "distillation": False, "drop_rate": 0.0}
    c.update(kw)
    return c


def _design(i: int) -> tuple[dict, float, float | None, str | None]:
    """(measured config, throughput ratio, top-1 if it would be trained, paper model) of trial i."""
    if i in PAPER:
        name, dims, depths, heads, ratio, acc = PAPER[i][:6]
        return config(dims, depths, heads), ratio, acc, name
    j = _step(i)
    dims = (96 + 24 * (i % 4), 192 + 48 * (i % 3), 288 + 48 * (i % 2))
    cfg = config(dims, (1, 1 + i % 3, 1 + i % 4), (2 + i % 3, 4, 4))
    ratio = 2.25 - 0.052 * j
    # later trials fall short of every earlier one at their speed, so the front stays the first 24's
    acc = 59 + 1.35 * j - 0.042 * j * j - (DEFICIT[i % 7] if i < 40 else 4.0 + 0.001 * (i // 40))
    return cfg, ratio, acc, None


def _step(i: int) -> int:
    """Where trial i sits on the speed axis: 0 (fastest) to 39; later trials never beat the
    fastest of the first 24 (those after the paper's models)."""
    return i % 40 if i < 40 else 3 + (i - 40) % 37


def add_trial(store: st.StudyStore, i: int, status: str | None = None):
    """Trial i of the deterministic pattern (``status`` forces ok, infeasible or failed)."""
    cfg, ratio, acc, paper = _design(i)
    j = _step(i)
    status = status or ("failed" if i % 7 == 6 and i not in PAPER else "infeasible" if ratio < 1.25 else "ok")
    t = store.ask()
    t.set("arch_id", f"arch{i:04d}")
    t.set("config", cfg)
    if paper:
        t.set("paper_model", paper)
    params_m, flops_m = PAPER[i][6:] if paper else (2.0 + 0.37 * j, 100 + 13.0 * j)
    t.set("cost", {"params_m": params_m, "flops_m": flops_m, "params": int(params_m * 1e6),
                   "flops": int(flops_m * 1e6), "input_size": 224})
    t.set("env", {"cpu_model": "Fixture CPU", "threads": 1, "allocator": "glibc (fixture)",
                  "torch_version": "x", "onnxruntime_version": "y", "host": "fixture"})
    ref_ips = 140.0 * (1 + REFERENCE_JITTER[i % len(REFERENCE_JITTER)])
    thr = {"images_per_s": ref_ips * ratio, "images_per_s_min": 0.96 * ref_ips * ratio,
           "images_per_s_max": 1.04 * ref_ips * ratio, "spread": 0.07, "rounds": 5, "batch_size": 16,
           "ratio_to_reference": ratio, "ratio_ci_low": ratio - 0.02, "ratio_ci_high": ratio + 0.02}
    cons = {"throughput_ratio": 1.25 - ratio}
    if status == "failed" and i % 14 == 13:  # the measuring worker crashed: nothing measured
        t.finish("failed", constraints=cons, reason="throughput: the measuring worker exited with code -9")
        return
    t.set("throughput", {"torch-cpu": thr})
    t.set("reference_throughput", {"torch-cpu": {"images_per_s": ref_ips}})
    if status == "failed":
        t.finish("failed", constraints=cons, reason="training: loss is nan at epoch 1, step 3: training diverged",
                 ratio=ratio)
        return
    if status == "infeasible" or acc is None:
        t.finish("infeasible", constraints=cons, reason=f"throughput {ratio:.3f}x the reference < 1.25x", ratio=ratio)
        return
    hist = [{"epoch": e, "train_loss": 2.0 / e, "val_top1": acc * e / 3, "val_top5": 90.0, "val_loss": 1.0, "lr": 1e-3,
             "seconds": 10.0, "train_images_per_s": 300.0} for e in (1, 2, 3)]
    train = {"status": "ok", "top1": acc, "top5": 95.0, "history": hist, "wall_s": 30.0, "train_images_per_s": 300.0,
             "seed": 0, "protocol": "proxy", "dataset": "fashion-mnist", "trained_config": {**cfg, **TRAINED_INPUT}}
    if i % 6 == 3 and i < 40:  # trained with several seeds: the accuracy carries an interval
        t.set("accuracy_ci", [acc - 0.7, acc + 0.6])
    t.finish("ok", values=[acc, ratio], constraints=cons, train=train)


# the reference trained with three seeds: its noise gives every candidate's delta a verdict
_HALF = half_widths(1.2, 3)
REFERENCE = {"top1": 70.0, "top1_sd": 1.2, "n": 3, "seeds": [0, 1, 2], "test_top1": 69.5, "test_top1_sd": 1.0,
             "single_run_ci_half": _HALF["single"], "delta_ci_half": _HALF["delta"], "pair_ci_half": _HALF["pair"]}


def make_study(url: str, name: str = "fixture", n: int = 24) -> st.StudyStore:
    m4 = config((128, 256, 384), (1, 2, 3), (4, 4, 4))
    store = st.create_study(name, url, {st.KIND_ATTR: "search", "budget": "1.25x", "reference": "efficientvit_m4",
                                        "backend": "torch-cpu", "reference_result": REFERENCE,
                                        "reference_config": m4, "reference_cost": {"params_m": 8.8, "flops_m": 299.0},
                                        "settings": {"data": "fashion-mnist", "protocol": "proxy"}})
    for i in range(n):
        add_trial(store, i)
    return store


def make_ablation_study(url: str, name: str = "table6-fixture") -> st.StudyStore:
    store = st.create_study(name, url, {st.KIND_ATTR: "ablation"})
    for row in range(1, 12):
        t = store.ask()
        ratio = 1.0 + 0.03 * (row - 6)
        t.set("row", row)
        t.set("label", f"row {row}")
        t.set("config", config((128, 256, 384), (1, 2, 3), (4, 4, 4)))
        t.set("throughput", {"onnx-cpu": {"images_per_s": 100 * ratio, "ratio_to_reference": ratio},
                             "torch-cpu": {"images_per_s": 80 * ratio, "ratio_to_reference": ratio * 0.98}})
        t.finish("ok", values=[70.0 - 0.2 * row, ratio])
    return store
