"""Zero-cost scores (finite, deterministic for a seed, blind to the order of the batch), their
calibration against the paper and the proxy, and the --prefilter decisions with the ``screened``
trials they store."""

import math
import os
import subprocess
import sys

import pytest
import torch

import efficientvit
from evit_search import storage as st
from evit_search.errors import UserError
from evit_search.reproduce.zerocost_calibration import CalibrationRow, calibrate, calibration_md
from evit_search.search.prefilter import Prefilter, decide, feasible_history, parse_prefilter
from evit_search.training.zerocost import SCORES, score_config, synthetic_batch

TINY = dict(dim=(16, 32, 48), depth=(1, 1, 1), num_heads=(2, 2, 2))


@pytest.fixture(scope="module")
def batch():
    return synthetic_batch(32, in_chans=1, num_classes=4, batch_size=8, seed=0)


def _tiny(**kw):
    return efficientvit.get_config("efficientvit_m0").with_overrides(**TINY, **kw)


def test_scores_are_finite_and_say_how_they_were_computed(batch):
    res = score_config(_tiny(), batch, seed=0)
    assert res.status == "ok", res.reason
    assert list(res.scores) == list(SCORES) and all(math.isfinite(v) for v in res.scores.values())
    assert set(res.seconds) == {"synflow", "snip+grad_norm", "naswot"} and res.total_s > 0
    assert res.settings["mode"] == "train" and res.settings["batch_size"] == 8 and res.settings["img_size"] == 32
    assert res.scores["synflow"] > 0 and res.scores["snip"] > 0 and res.scores["grad_norm"] > 0


def test_scores_are_deterministic_for_a_seed(batch):
    a, b = score_config(_tiny(), batch, seed=3), score_config(_tiny(), batch, seed=3)
    assert a.scores == b.scores
    assert score_config(_tiny(), batch, seed=4).scores != a.scores  # the seed sets the initialisation
    # the same seed draws the same batch
    again = synthetic_batch(32, in_chans=1, num_classes=4, batch_size=8, seed=0)
    assert torch.equal(again.x, batch.x) and torch.equal(again.y, batch.y)


def test_scores_do_not_depend_on_the_order_of_the_batch(batch):
    a = score_config(_tiny(), batch, seed=0)
    b = score_config(_tiny(), batch.permuted(torch.randperm(len(batch.y), generator=torch.Generator().manual_seed(1))),
                     seed=0)
    for k in SCORES:
        assert b.scores[k] == pytest.approx(a.scores[k], rel=1e-5), k


def test_scoring_leaves_the_callers_generator_and_threads_alone(batch):
    threads = torch.get_num_threads()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    score_config(_tiny(), batch, seed=0)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("switch", [{"act": "hardswish"}, {"norm": "ln"}, {"block": "swin"}, {"attention": "mhsa"}])
def test_every_ablation_switch_gets_finite_scores(batch, switch):
    res = score_config(_tiny(**switch), batch, seed=0)
    assert res.status == "ok" and len(res.scores) == 4, res.reason


# --------------------------------------------------------------------------- calibration
def _rows(proxy=True):
    # a score that follows size exactly, one that does not, the paper's order = size order
    return [CalibrationRow(f"m{i}", params_m=1.0 + i, flops_m=100.0 + 10 * i,
                           scores={"synflow": 10.0 ** i, "snip": [3.0, 1.0, 4.0, 1.5, 5.0, 9.0][i]},
                           proxy_top1=([80.0, 81.0, 80.5, 82.0, 81.5, 83.0][i] if proxy else None),
                           paper_top1=60.0 + i) for i in range(6)]


def test_calibration_taus_and_the_size_flag():
    cal = calibrate("toy", _rows(), scores=("synflow", "snip"))
    syn, snip, params = cal.tau("synflow"), cal.tau("snip"), cal.tau("params_m")
    assert syn.tau_paper == pytest.approx(1.0) and syn.tracks_size and syn.n_paper == 6
    assert snip.tau_paper == pytest.approx(0.6) and not snip.tracks_size
    assert params.tau_params == pytest.approx(1.0) and not params.tracks_size  # a size count is the baseline
    assert syn.tau_proxy == pytest.approx(0.733, abs=1e-3) and syn.p_proxy is not None
    md = "\n".join(calibration_md(cal))
    assert "tracks size" in md and "more than size" in md and "0.867" in md


def test_calibration_without_a_trained_proxy_says_so():
    cal = calibrate("toy", _rows(proxy=False), scores=("synflow",))
    assert cal.tau("synflow").tau_proxy is None and not cal.trained
    assert "no trained proxy yet" in "\n".join(calibration_md(cal))


def test_the_trained_proxy_is_read_from_the_csv_proxy_check_writes(tmp_path):
    """proxy-check's CSV (one row per model, the mean over seeds) and its earlier format both
    feed the calibration; a model without a mean is left out, not read as a number."""
    import pandas as pd

    from evit_search.reproduce.zerocost_report import proxy_check_top1

    now = tmp_path / "now.csv"
    pd.DataFrame([{"model": "efficientvit_m0", "runs": 3, "mean": 80.3, "sd": 1.08},
                  {"model": "efficientvit_m1", "runs": 0, "mean": None, "sd": None}]).to_csv(now, index=False)
    before = tmp_path / "before.csv"
    pd.DataFrame([{"model": "efficientvit_m0", "proxy_top1": 81.9, "status": "ok"},
                  {"model": "efficientvit_m1", "proxy_top1": None, "status": "failed"}]).to_csv(before, index=False)
    assert proxy_check_top1(now) == {"efficientvit_m0": 80.3}
    assert proxy_check_top1(before) == {"efficientvit_m0": 81.9}
    assert proxy_check_top1(tmp_path / "missing.csv") == {}


# --------------------------------------------------------------------------- --prefilter
def test_parse_prefilter():
    assert parse_prefilter(None) is None
    assert parse_prefilter("synflow:0.5") == Prefilter("synflow", 0.5)
    for bad in ("synflow", "flops:0.5", "synflow:x", "synflow:1.5", "naswot:0"):
        with pytest.raises(UserError, match="--prefilter"):
            parse_prefilter(bad)


def test_decide_screens_the_worst_fraction_only_with_enough_history():
    pf = Prefilter("synflow", 0.5)
    assert not decide(pf, 0.0, [1.0, 2.0, 3.0]).screen  # too few scored so far
    hist = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    d = decide(pf, 2.5, hist)
    assert d.screen and d.threshold == 3.0 and "worst 50 %" in d.reason and "2.5" in d.reason
    assert not decide(pf, 3.5, hist).screen
    assert not decide(pf, None, hist).screen  # no score: trained, never screened on nothing


def _screened_study(url):
    from evit_search.tui.demo import add_trial, config, make_study

    store = make_study(url, "pre", n=6)
    t = store.ask()
    t.set("arch_id", "screened-1")
    t.set("config", config((64, 128, 192), (1, 1, 1), (2, 2, 2)))
    t.set("cost", {"params_m": 2.0, "flops_m": 90.0, "params": 2000000, "flops": 90000000, "input_size": 224})
    t.set("zerocost", {"scores": {"synflow": 1.5}, "seconds": {"synflow": 0.5}, "settings": {}, "status": "ok"})
    d = decide(Prefilter("synflow", 0.5, min_history=1), 1.5, [2.0, 3.0])
    t.finish("screened", constraints={"throughput_ratio": -0.5}, reason=d.reason, ratio=1.75)
    add_trial(store, 7)
    return store


def test_screened_trials_appear_in_show_and_the_tui(tmp_path):
    from evit_search.tui.view import filtered, load_view

    url = str(tmp_path / "s.db")
    store = _screened_study(url)
    rec = next(r for r in store.records() if r.status == "screened")
    assert rec.feasible is True and rec.accuracy is None and rec.attrs["zerocost"]["scores"]["synflow"] == 1.5
    assert feasible_history(store.records(), "synflow") == [1.5]  # screened ones count, one per architecture
    view = load_view("pre", url)
    for mode in ("all", "feasible"):
        assert rec.number in [r.number for r in filtered(view, mode)]
    assert [r.number for r in filtered(view, "all", "screened")] == [rec.number]
    out = subprocess.run([sys.executable, "-m", "evit_search", "show", "pre", "--all", "--storage", url],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "400"})
    assert out.returncode == 0, out.stderr
    assert "screened" in out.stdout and "zero-cost synflow" in out.stdout
    assert st.status_counts(store.records())["screened"] == 1
