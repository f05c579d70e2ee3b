"""How faithful is a proxy protocol? Train M0-M5 with it, several seeds, and compare its ranking
with the paper's ImageNet top-1, with a long run on the same data, and with what params or FLOPs
alone would predict.

Every training run is a trial of a study (kind ``proxy-check``) keyed by (protocol, model,
seed): a check resumes where it stopped, and a sweep over several protocols and a long run
reuses every run already stored. Two Kendall taus separate the two errors of a proxy: against a
long run on the same data (the proxy's own error: short training) and against the paper (that
plus the gap between Fashion-MNIST and ImageNet).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import efficientvit

from .. import storage as st
from ..errors import UserError
from ..hooks import Hooks
from ..measure.cost import count_cost
from ..stats import SeedNoise, kendall_test
from ..training.bundle import DataBundle
from ..training.protocols import PROTOCOLS, Protocol, get_protocol
from ..training.splits import prepare_data
from ..training.trainer import train
from . import paper

M4 = "efficientvit_m4"
MODELS = [f"efficientvit_m{i}" for i in range(6)]


@dataclass
class ProxyCheckConfig:
    protocols: list[str]
    models: list[str] = field(default_factory=lambda: list(MODELS))
    seeds: int = 1  # per model
    m4_seeds: int | None = None  # M4 only (its seed SD); default: seeds
    long: str | None = None  # the long run's protocol (one seed per model)
    seed: int = 0  # the first seed
    data: str = "fashion-mnist"
    data_name: str = "fashion-mnist"
    storage: str | None = None
    study: str | None = None
    threads: int | None = None
    device: str = "cpu"
    precision: str = "fp32"


@dataclass
class Fidelity:
    """One protocol's ranking of M0-M5 and what it costs."""

    protocol: Protocol
    models: list[dict]  # model, runs, mean, sd, val_loss, test_mean, params_m, flops_m, seconds, cpu_s, paper_top1
    tau_paper: float | None = None
    p_paper: float | None = None
    tau_paper_loss: float | None = None  # ranking by mean validation loss (lower is better)
    p_paper_loss: float | None = None
    tau_long: float | None = None
    p_long: float | None = None
    seed_sd: float | None = None  # of M4, points
    seed_sd_runs: int = 0
    spread_over_sd: float | None = None  # (best - worst model mean) / M4's seed SD
    min_gap_over_sd: float | None = None  # the closest pair of models adjacent in the paper's order / SD
    seconds_per_m4: float | None = None  # wall seconds to train and evaluate M4 (mean over its runs)
    cpu_s_per_m4: float | None = None

    def summary(self) -> dict:
        """The machine-readable form (``proxy-check --json``)."""
        return {"protocol": self.protocol.name, "description": self.protocol.description,
                "token_grid": list(self.protocol.token_grid()), "blind_to_attention": self.protocol.blind_to_attention(),
                "seeds": max((m["runs"] for m in self.models), default=0), "kendall_tau_paper": self.tau_paper,
                "kendall_p": self.p_paper, "kendall_tau_paper_loss": self.tau_paper_loss, "kendall_p_loss": self.p_paper_loss,
                "kendall_tau_long": self.tau_long, "kendall_p_long": self.p_long, "seed_sd_points": self.seed_sd,
                "seed_sd_runs": self.seed_sd_runs, "spread_over_seed_sd": self.spread_over_sd,
                "min_adjacent_gap_over_seed_sd": self.min_gap_over_sd, "seconds_per_m4": self.seconds_per_m4,
                "cpu_seconds_per_m4": self.cpu_s_per_m4,
                "models": {m["model"]: {k: m[k] for k in ("mean", "sd", "runs", "val_loss", "test_mean", "params_m",
                                                          "flops_m", "paper_top1")} for m in self.models}}


@dataclass
class ProxyCheck:
    store: st.StudyStore
    fidelities: list[Fidelity]
    long: Fidelity | None
    split: str  # what the accuracies were measured on


def settings_key(p: Protocol) -> dict:
    """What a protocol trains with, whatever it is called: a run counts for every protocol of the
    same settings (a candidate that becomes the default keeps its runs)."""
    return st.jsonable({k: v for k, v in p.to_dict().items() if k not in ("name", "description")})


def _done(store: st.StudyStore) -> dict[tuple[str, str, int], st.TrialRecord]:
    """Stored runs by (protocol, model, seed), for every protocol defined now whose settings they
    were trained with; runs of settings no protocol has any more do not count."""
    by_settings: dict[str, list[str]] = {}
    for name, p in PROTOCOLS.items():
        by_settings.setdefault(repr(settings_key(p)), []).append(name)
    out = {}
    for r in store.records():
        a = r.attrs
        if r.status == "trained":
            for name in by_settings.get(repr(a.get("protocol_key")), []):
                out[(name, a["model"], int(a["seed"]))] = r
    return out


def _plan(cfg: ProxyCheckConfig) -> list[tuple[str, str, int]]:
    """Runs to have, cheapest first: one seed of every model per protocol, then M4's extra seeds,
    then the other models' extra seeds, then the long run."""
    m4_seeds = cfg.m4_seeds or cfg.seeds
    plan = [(p, m, cfg.seed) for p in cfg.protocols for m in cfg.models]
    plan += [(p, M4, cfg.seed + k) for p in cfg.protocols for k in range(1, m4_seeds) if M4 in cfg.models]
    plan += [(p, m, cfg.seed + k) for p in cfg.protocols for k in range(1, cfg.seeds) for m in cfg.models if m != M4]
    if cfg.long:
        plan += [(cfg.long, m, cfg.seed) for m in cfg.models]
    return list(dict.fromkeys(plan))


def proxy_check(cfg: ProxyCheckConfig, bundle: DataBundle, hooks: Hooks | None = None) -> ProxyCheck:
    hooks = hooks or Hooks()
    for name in cfg.protocols + ([cfg.long] if cfg.long else []):
        get_protocol(name)
    for m in cfg.models:
        efficientvit.get_config(m)
    if len(cfg.models) < 2:
        raise UserError("--models: give at least two models to rank")
    name = cfg.study or f"proxy-check-{cfg.data_name}"
    store = st.create_study(name, cfg.storage, {st.KIND_ATTR: "proxy-check", "data": cfg.data}, {"data": cfg.data})
    hooks.info(f"proxy-check study {name} in {store.display_url}: runs already stored are not trained again")
    done = _done(store)
    prepared: dict[str, object] = {}
    costs = {m: count_cost(efficientvit.get_config(m)).to_dict() for m in cfg.models}  # at 224 px, as the paper
    for protocol_name, model, seed in _plan(cfg):
        if (protocol_name, model, seed) in done:
            continue
        protocol = get_protocol(protocol_name)
        if protocol_name not in prepared:
            prepared = {protocol_name: prepare_data(bundle, protocol)}  # one protocol's splits in memory at a time
        on_step, on_epoch = hooks.train(f"{protocol_name} {model} seed {seed}")
        res = train(efficientvit.get_config(model), prepared[protocol_name], protocol, seed=seed, threads=cfg.threads,
                    device=cfg.device, precision=cfg.precision, on_step=on_step, on_epoch=on_epoch)
        trial = store.ask()
        for k, v in {"protocol": protocol_name, "protocol_key": settings_key(protocol), "model": model, "seed": seed,
                     "data": cfg.data, "cost": costs[model], "train": res.to_dict()}.items():
            trial.set(k, v)
        if res.status == "ok":
            trial.finish("trained")  # no objective values: a check ranks models, it optimises nothing
        else:
            trial.finish("failed", reason=f"training: {res.reason}")
            hooks.info(f"{protocol_name} {model} seed {seed}: {res.reason}")
    done = _done(store)
    long = fidelity(get_protocol(cfg.long), cfg.models, done, None) if cfg.long else None
    fids = [fidelity(get_protocol(p), cfg.models, done, long) for p in cfg.protocols]
    return ProxyCheck(store, fids, long, "validation split (held out from the training images); test split beside it")


def fidelity(protocol: Protocol, models: list[str], done: dict, long: Fidelity | None) -> Fidelity:
    """The protocol's per-model means over seeds, and its taus, noise and cost."""
    rows = []
    for m in models:
        runs = [done[k] for k in sorted(done) if k[0] == protocol.name and k[1] == m]
        if not runs:
            continue
        tr = [r.train for r in runs]
        noise = SeedNoise(tuple(t["top1"] for t in tr))
        rows.append({"model": m, "runs": noise.n, "mean": noise.mean, "sd": noise.sd,
                     "values": list(noise.values), "val_loss": statistics.fmean(t["val_loss"] for t in tr),
                     "test_mean": statistics.fmean(t["test_top1"] for t in tr if t.get("test_top1") is not None)
                     if any(t.get("test_top1") is not None for t in tr) else None,
                     "params_m": runs[0].cost["params_m"], "flops_m": runs[0].cost["flops_m"],
                     "seconds": statistics.fmean(t["wall_s"] for t in tr),
                     "cpu_s": statistics.fmean(t.get("cpu_s") or 0.0 for t in tr), "paper_top1": paper.top1(m)})
    f = Fidelity(protocol, rows)
    ranked = [r for r in rows if r["paper_top1"] is not None]
    if len(ranked) >= 2:
        f.tau_paper, f.p_paper = kendall_test([r["mean"] for r in ranked], [r["paper_top1"] for r in ranked])
        f.tau_paper_loss, f.p_paper_loss = kendall_test([-r["val_loss"] for r in ranked], [r["paper_top1"] for r in ranked])
    if long is not None:
        pairs = [(r["mean"], lr["mean"]) for r in rows for lr in long.models if lr["model"] == r["model"]]
        if len(pairs) >= 2:
            f.tau_long, f.p_long = kendall_test([a for a, _ in pairs], [b for _, b in pairs])
    m4 = next((r for r in rows if r["model"] == M4), None)
    if m4 is not None:
        f.seed_sd, f.seed_sd_runs = m4["sd"], m4["runs"]
        f.seconds_per_m4, f.cpu_s_per_m4 = m4["seconds"], m4["cpu_s"]
    if f.seed_sd:
        means = [r["mean"] for r in rows]
        f.spread_over_sd = (max(means) - min(means)) / f.seed_sd
        by_paper = sorted(ranked, key=lambda r: r["paper_top1"])
        gaps = [abs(b["mean"] - a["mean"]) for a, b in zip(by_paper, by_paper[1:])]
        f.min_gap_over_sd = min(gaps) / f.seed_sd if gaps else None
    return f


# --------------------------------------------------------------------------- taus from stored summaries
def tau_between(a: dict, b: dict, score: str = "mean") -> tuple[float, float, int]:
    """Kendall tau and its p between two ``proxy-check --json`` summaries' per-model ``models``
    (``a`` ranked by ``score``: ``mean`` top-1, or ``val_loss``, lower is better; ``b`` by its
    top-1 mean) over the models both hold, and how many that is. The long run of a protocol study
    can so be ranked against a proxy measured earlier, on another host, without training either
    again."""
    common = [m for m in a if m in b and a[m].get(score) is not None and b[m].get("mean") is not None]
    sign = -1.0 if score == "val_loss" else 1.0
    tau, p = kendall_test([sign * a[m][score] for m in common], [b[m]["mean"] for m in common])
    return tau, p, len(common)


def follows_paper(models: dict) -> bool:
    """Whether a summary's top-1 means rank its models strictly in the paper's order (False when
    fewer than two have a paper figure)."""
    ranked = [m for m in models if models[m].get("paper_top1") is not None and models[m].get("mean") is not None]
    ours = sorted(ranked, key=lambda m: models[m]["mean"])
    theirs = sorted(ranked, key=lambda m: models[m]["paper_top1"])
    means = [models[m]["mean"] for m in ranked]
    return len(ranked) >= 2 and len(set(means)) == len(means) and ours == theirs


def taus_against_long(long: dict, summaries: dict[str, dict], study: list[dict],
                      models: list[str] = MODELS) -> list[dict]:
    """Each protocol's tau against a long run (``long``: the run's per-model ``models``).

    ``summaries``: protocol -> a ``proxy-check --json`` summary (its per-model means are ranked
    against the long run's, by top-1 and by validation loss). ``study``: protocol-study rows
    (``protocol``, ``tau_paper``, ``p_paper``) whose per-model means were not kept: a row's tau
    against the long run is its tau against the paper exactly when the long run holds every one of
    ``models`` (the models the study's taus were taken over) and ranks them strictly in the paper's
    order -- two identical rankings -- and is unknown otherwise, with the reason."""
    rows = []
    for name, s in summaries.items():
        tau, p, n = tau_between(s["models"], long)
        tau_l, p_l, _ = tau_between(s["models"], long, "val_loss")
        rows.append({"protocol": name, "tau_long": tau, "p_long": p, "tau_long_loss": tau_l, "p_long_loss": p_l,
                     "models": n, "how": f"per-model means over {s.get('seeds', '?')} seed(s)"})
    complete = all(m in long and long[m].get("mean") is not None for m in models)
    with_paper = all(m in long and long[m].get("paper_top1") is not None for m in models)
    if not complete:
        why = f"unknown: the long run lacks {', '.join(m for m in models if m not in long)}"
    elif not with_paper:
        why = "unknown: the long run's summary has no paper figures to compare orders with"
    elif not follows_paper({m: long[m] for m in models}):
        why = "unknown: no per-model means kept, and the long run ranks unlike the paper"
    else:
        why = None
    for r in study:
        rows.append({"protocol": r["protocol"], "tau_long": None if why else float(r["tau_paper"]),
                     "p_long": None if why else float(r["p_paper"]), "tau_long_loss": None, "p_long_loss": None,
                     "models": len(models), "how": why or "= its tau vs paper (the long run ranks as the paper does)"})
    return rows
