"""The throughput model: fitted to measured candidates of one host and backend, it skips a
candidate only when even its prediction raised by its own out-of-sample error misses the budget."""

import math
import random
import socket

import numpy as np
import optuna
import pytest

from evit_search import storage as st
from evit_search.reporting.predictions import prediction_error
from evit_search.search import predictor
from evit_search.search.space import load_space


def _records(n: int, seed: int = 0, noise: float = 0.03):
    """Candidates of the default space whose ratio follows FLOPs (ratio ~ (300 / FLOPs)^0.9) with noise."""
    space = load_space("efficientvit")
    rng = random.Random(seed)
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for i in range(n):
        t = study.ask()
        cfg = space.suggest(t)
        study.tell(t, [0.0, 0.0])
        flops = sum(s.dim * s.dim * s.depth * (4 + 2 * s.n_ffn * s.ffn_ratio) * r * r
                    for s, r in zip(cfg.stages, cfg.stage_resolutions())) / 1e6 + 20
        ratio = (300.0 / flops) ** 0.9 * math.exp(rng.gauss(0, noise))
        out.append(st.TrialRecord(number=i, state="pruned", status="infeasible", config=cfg.to_dict(),
                                  cost={"flops_m": flops, "params_m": flops / 40}, host=socket.gethostname(),
                                  throughput={"torch-cpu": {"ratio_to_reference": ratio}}))
    return out


def test_no_prediction_before_the_warm_up():
    assert predictor.fit(_records(predictor.WARMUP - 1), "torch-cpu") is None
    assert predictor.fit(_records(predictor.WARMUP), "torch-cpu") is not None


def test_the_model_fits_and_knows_its_error():
    recs = _records(40)
    model = predictor.fit(recs, "torch-cpu")
    assert model.n == 40 and model.mdape < 0.15 and model.spearman > 0.8 and 1.0 < model.margin < 1.5
    assert predictor.fit(recs, "onnx-cpu") is None  # another backend's measurements are not these
    assert predictor.fit(recs, "torch-cpu", host="another-host") is None  # nor another machine's


def test_it_skips_only_beyond_its_margin():
    model = predictor.fit(_records(40), "torch-cpu")
    budget = 1.25
    below = budget / model.margin * 0.99  # even raised by the error, below the budget
    near = budget / model.margin * 1.01  # within the error of the budget: measured
    assert predictor.skip(model, below, budget) and not predictor.skip(model, near, budget)
    assert not predictor.skip(model, 2.0, budget)
    assert not predictor.skip(None, 0.1, budget) and not predictor.skip(model, 0.1, None)  # no model, no speed term


def test_online_error_compares_predictions_made_before_measuring():
    recs = _records(10)
    for r, f in zip(recs, (1.1, 0.9, 1.0, 1.2, 0.8, 1.0, 1.0, 1.05, 0.95, 1.0)):
        r.attrs["predicted_ratio"] = r.throughput["torch-cpu"]["ratio_to_reference"] * f
    err = prediction_error(recs, "torch-cpu")
    assert err["n"] == 10 and err["mdape"] == pytest.approx(0.05)


def test_the_engine_stores_a_skip_unmeasured_and_measures_one_within_the_margin(tmp_path, monkeypatch):
    """A candidate predicted below the budget beyond the margin is stored predicted-infeasible with
    its prediction and never measured; one predicted within the margin is measured (the measuring
    here is a stand-in that records the call)."""
    from evit_search.search import engine
    from evit_search.search.config import RunConfig

    class Model:
        n, margin, mdape, spearman = 20, 1.2, 0.05, 0.9

        def __init__(self, ratio):
            self.ratio = ratio

        def predict(self, config, cost):
            return self.ratio

    rc = RunConfig(space="tiny", data="synthetic", protocol="proxy-fast", budget="1.25x", sampler="random", trials=2,
                   storage=str(tmp_path / "s.db"), study="p", zerocost=False)
    worker = engine.Worker(rc)
    store = st.create_study("p", rc.storage, {})
    store.set_sampler(optuna.samplers.RandomSampler(seed=0))
    measured = []

    def fake_measure(cfg, more=False):
        measured.append(cfg.arch_id())
        raise RuntimeError("measured")

    monkeypatch.setattr(worker, "_measure", fake_measure)
    monkeypatch.setattr(predictor, "fit", lambda records, backend, **kw: Model(1.25 / 1.2 * 0.99))
    out = worker.run_trial(store)
    assert out["status"] == "predicted-infeasible" and not measured
    rec = store.record(out["number"])
    assert rec.attrs["predicted_ratio"] == pytest.approx(1.25 / 1.2 * 0.99) and rec.feasible is False
    assert rec.attrs["predictor"]["margin"] == 1.2 and not rec.throughput
    monkeypatch.setattr(predictor, "fit", lambda records, backend, **kw: Model(1.25 / 1.2 * 1.01))
    out = worker.run_trial(store)
    assert out["status"] == "failed" and "measured" in out["reason"] and len(measured) == 1


# --------------------------------------------------------------------------- the additive model at warm-up sizes
def _additive(n: int, seed: int, noise: float = 0.03):
    """Candidates of the default space whose time per image, relative to M4's, is a sum of parts
    (a constant, FLOPs, operators) with ``noise``; ratios from about 0.4x to 2x, like the
    measured ones (reports/search-benchmark-*)."""
    space = load_space("efficientvit")
    rng = random.Random(seed)
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    while len(out) < n:
        t = study.ask()
        try:
            cfg = space.suggest(t).validate()
        except Exception:  # noqa: BLE001 - an invalid sample: draw again
            study.tell(t, [0.0, 0.0])
            continue
        study.tell(t, [0.0, 0.0])
        flops = sum(s.dim * s.dim * s.depth * (4 + 2 * s.n_ffn * s.ffn_ratio) * r * r
                    for s, r in zip(cfg.stages, cfg.stage_resolutions())) / 1e6 + 20
        ops = sum(s.depth * (4 * s.n_ffn + 5 * s.num_heads) for s in cfg.stages)
        rel_time = 0.15 + 0.6 * flops / 400 + 0.25 * ops / 60
        ratio = math.exp(rng.gauss(0, noise)) / rel_time
        out.append(st.TrialRecord(number=len(out), state="pruned", status="infeasible", config=cfg.to_dict(),
                                  cost={"flops_m": flops, "params_m": flops / 40}, host=socket.gethostname(),
                                  throughput={"torch-cpu": {"ratio_to_reference": ratio}}))
    return out


@pytest.mark.parametrize("warmup", [8, 12, 16])
def test_after_the_warm_up_it_skips_clearly_slow_candidates_and_no_feasible_one(warmup):
    """Fitted on the first WARMUP measured candidates: of 60 held-out ones, most of those well
    below the budget (under 0.8 of it) are skipped, and no feasible one is."""
    budget, skipped_slow, slow = 1.25, 0, 0
    for seed in range(3):
        recs = _additive(warmup + 60, seed)
        model = predictor.fit(recs[:warmup], "torch-cpu")
        for r in recs[warmup:]:
            ratio = r.throughput["torch-cpu"]["ratio_to_reference"]
            skipped = predictor.skip(model, model.predict(r.config, r.cost), budget)
            assert not (skipped and ratio >= budget), (warmup, seed, ratio, model.margin)
            if ratio < 0.8 * budget:
                slow += 1
                skipped_slow += skipped
    assert slow > 30 and skipped_slow >= 0.6 * slow, (skipped_slow, slow)


def test_the_margin_is_a_prediction_bound_that_narrows_as_candidates_grow():
    errs = np.array([0.05, -0.05] * 4)  # RMS 0.05 over 8, then the same over 32
    few, many = predictor.margin(errs), predictor.margin(np.tile(errs, 4))
    assert few > many > math.exp(0.05)  # wider than the RMS error, and wider with fewer candidates
    assert few == pytest.approx(math.exp(2.998 * 0.05 * math.sqrt(1 + 1 / 8)), rel=1e-3)  # t(0.99, 7 dof)
    assert many == pytest.approx(math.exp(2.453 * 0.05 * math.sqrt(1 + 1 / 32)), rel=1e-3)  # t(0.99, 31 dof)


def test_the_reference_is_a_data_point_of_ratio_one():
    """Given as a point of ratio 1 (not counted among the measured), the reference pulls the fit
    to 1.0 at its own features (the synthetic truth puts M4 elsewhere)."""
    import efficientvit
    from evit_search.measure.cost import count_cost

    cfg = efficientvit.get_config("efficientvit_m4")
    ref = (cfg.to_dict(), count_cost(cfg).to_dict())
    recs = _additive(predictor.WARMUP, 0)
    model, plain = predictor.fit(recs, "torch-cpu", reference=ref), predictor.fit(recs, "torch-cpu")
    assert model.n == plain.n == predictor.WARMUP
    assert abs(model.predict(*ref) - 1.0) < abs(plain.predict(*ref) - 1.0)
