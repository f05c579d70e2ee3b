"""Deterministic demo studies written straight into storage (no torch, no training): the TUI's
test fixtures and its start-up benchmark."""

from .. import storage as st


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


def add_trial(store: st.StudyStore, i: int, status: str | None = None):
    """Trial i of a deterministic pattern: ok / infeasible / failed. Values cycle every 40 trials so
    that large demo studies stay realistic (the first 24, the tests' fixture, never change)."""
    j = i % 40
    dims = (96 + 24 * (i % 4), 192 + 48 * (i % 3), 288 + 48 * (i % 2))
    depths = (1, 1 + i % 3, 1 + i % 4)
    heads = (2 + i % 3, 4, 4)
    cfg = config(dims, depths, heads)
    params_m = 2.0 + 0.37 * j
    flops_m = 100 + 13.0 * j
    ratio = 2.2 - 0.05 * j
    status = status or ("failed" if i % 7 == 6 else "infeasible" if ratio < 1.25 else "ok")
    t = store.ask()
    t.set("arch_id", f"arch{i:04d}")
    t.set("config", cfg)
    t.set("cost", {"params_m": params_m, "flops_m": flops_m, "params": int(params_m * 1e6),
                             "flops": int(flops_m * 1e6), "input_size": 224})
    thr = {"images_per_s": 140 * ratio, "images_per_s_min": 135 * ratio, "images_per_s_max": 145 * ratio,
           "spread": 0.07, "rounds": 5, "batch_size": 16, "ratio_to_reference": ratio, "ratio_ci_low": ratio - 0.02,
           "ratio_ci_high": ratio + 0.02}
    t.set("env", {"cpu_model": "Fixture CPU", "threads": 1, "allocator": "glibc (fixture)",
                            "torch_version": "x", "onnxruntime_version": "y", "host": "fixture"})
    cons = {"throughput_ratio": 1.25 - ratio}
    if status == "failed":
        t.finish("failed", constraints=cons, reason="training: loss is nan at epoch 1, step 3: training diverged")
        return
    t.set("throughput", {"torch-cpu": thr})
    t.set("reference_throughput", {"torch-cpu": {"images_per_s": 140.0}})
    if status == "infeasible":
        t.finish("infeasible", constraints=cons, reason=f"throughput {ratio:.3f}x the reference < 1.25x", ratio=ratio)
        return
    acc = 60 + 1.3 * j - 0.04 * j * j + (2 if i % 5 == 0 else 0)
    hist = [{"epoch": e, "train_loss": 2.0 / e, "val_top1": acc * e / 3, "val_top5": 90.0, "val_loss": 1.0, "lr": 1e-3,
             "seconds": 10.0, "train_images_per_s": 300.0} for e in (1, 2, 3)]
    train = {"status": "ok", "top1": acc, "top5": 95.0, "history": hist, "wall_s": 30.0, "train_images_per_s": 300.0,
             "seed": 0, "protocol": "proxy", "dataset": "fixture"}
    t.finish("ok", values=[acc, ratio], constraints=cons, train=train)


def make_study(url: str, name: str = "fixture", n: int = 24) -> st.StudyStore:
    store = st.create_study(name, url, {st.KIND_ATTR: "search", "budget": "1.25x", "reference": "efficientvit_m4",
                                        "backend": "torch-cpu", "reference_result": {"top1": 70.0}})
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
