"""Seed noise: intervals and verdicts on constructed numbers, and what the commands write."""

import json
import math

import pytest
from scipy.stats import t as student_t

from evit_search import storage as st
from evit_search.reporting.accuracy import delta_to_reference, indistinguishable_from, reference_noise
from evit_search.stats import SeedNoise, delta_interval, pooled_sd


def test_seed_noise_mean_and_sd():
    n = SeedNoise((84.0, 85.0, 86.0))
    assert n.mean == pytest.approx(85.0) and n.sd == pytest.approx(1.0) and n.n == 3
    assert SeedNoise((84.0,)).sd is None  # one run measures no noise


def test_pooled_sd_over_designs():
    sd, df = pooled_sd([[1.0, 3.0], [10.0, 12.0, 14.0]])  # squares 2 + 8 over 1 + 2 degrees of freedom
    assert df == 3 and sd == pytest.approx(math.sqrt(10 / 3))
    assert pooled_sd([[1.0], [2.0]]) == (None, 0)


@pytest.mark.parametrize("a,b,verdict", [(88.0, 85.0, "better"), (82.0, 85.0, "worse"), (85.5, 85.0, "indistinguishable")])
def test_known_noise_gives_known_verdicts(a, b, verdict):
    """SD 0.5 over 3 reference seeds: the half width for one candidate is t(0.975, 2) x 0.5 x sqrt(1 + 1/3)."""
    d = delta_interval(a, 1, b, 3, 0.5, 2)
    half = student_t.ppf(0.975, 2) * 0.5 * math.sqrt(1 + 1 / 3)
    assert d.delta == pytest.approx(a - b) and d.high - d.low == pytest.approx(2 * half)
    assert half == pytest.approx(2.4841, abs=1e-3) and d.verdict == verdict  # 4.303 x 0.5 x 1.155


def test_unmeasured_noise_is_never_a_result():
    assert delta_interval(90.0, 1, 80.0, 1, None, 0).verdict == "indistinguishable"


def _rec(number, acc, ratio=1.5):
    return st.TrialRecord(number=number, state="complete", status="ok", accuracy=acc, ratio=ratio, feasible=True)


def test_deltas_to_the_reference_and_front_members_told_apart():
    attrs = {"reference_result": {"top1": 85.0, "top1_sd": 0.5, "n": 3}}
    noise = reference_noise(attrs)
    assert delta_to_reference(_rec(1, 88.0), noise).verdict == "better"
    front = [_rec(1, 88.0, 1.3), _rec(2, 87.5, 1.6), _rec(3, 80.0, 2.0)]
    same = indistinguishable_from(front, noise)
    assert same == {1: [2], 2: [1], 3: []}  # 0.5 apart is inside the noise; 7.5 is not


def test_proxy_check_json_holds_its_keys(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "evit_search", "proxy-check", "--data", "synthetic", "--protocol",
                          "proxy-fast", "--models", "efficientvit_m0,efficientvit_m1", "--seeds", "2",
                          "--train-threads", "1", "--storage", str(tmp_path / "pc.db"), "--reports", str(tmp_path),
                          "--json", str(tmp_path / "pc.json")], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads((tmp_path / "pc.json").read_text())
    for key in ("protocol", "seeds", "kendall_tau_paper", "kendall_p", "kendall_tau_long", "seed_sd_points",
                "seconds_per_m4", "models"):
        assert key in summary, key
    assert summary["protocol"] == "proxy-fast" and summary["seeds"] == 2 and summary["kendall_tau_long"] is None
    m0 = summary["models"]["efficientvit_m0"]
    assert m0["runs"] == 2 and m0["sd"] is not None and 0 <= m0["mean"] <= 100


def test_without_measured_noise_no_front_member_is_called_indistinguishable():
    from evit_search.reporting.accuracy import indistinguishable_from, reference_noise
    from evit_search.storage import TrialRecord

    front = [TrialRecord(0, "complete", "ok", accuracy=80.0), TrialRecord(1, "complete", "ok", accuracy=80.1)]
    assert indistinguishable_from(front, reference_noise({"reference_result": {"top1": 80.0, "n": 1}})) == {0: [], 1: []}


def test_taus_between_stored_summaries():
    from evit_search.reproduce.proxycheck import follows_paper, tau_between

    paper = {"m0": 63.2, "m1": 68.4, "m2": 70.8, "m3": 73.4}
    long = {m: {"mean": 80.0 + i, "paper_top1": p} for i, (m, p) in enumerate(paper.items())}
    proxy = {m: {"mean": v, "val_loss": loss} for m, v, loss in
             (("m0", 70.0, 0.9), ("m1", 72.0, 0.8), ("m2", 71.0, 0.7), ("m3", 73.0, 0.6), ("m9", 99.0, 0.1))}
    tau, p, n = tau_between(proxy, long)
    assert n == 4 and tau == pytest.approx(4 / 6) and 0 < p <= 1  # one of six pairs swapped (m1/m2); m9 not in both
    assert tau_between(proxy, long, "val_loss")[0] == pytest.approx(1.0)  # lower loss ranks first
    assert follows_paper(long)
    long["m1"]["mean"] = 82.5  # m1 above m2: no longer the paper's order
    assert not follows_paper(long)
    long["m1"]["mean"] = long["m2"]["mean"]  # a tie is no order
    assert not follows_paper(long)


def test_a_study_row_takes_its_paper_tau_only_against_a_complete_long_run_in_the_papers_order():
    from evit_search.reproduce.proxycheck import taus_against_long

    models = ["m0", "m1", "m2"]
    long = {m: {"mean": 80.0 + i, "paper_top1": 60.0 + i} for i, m in enumerate(models)}
    study = [{"protocol": "p64", "tau_paper": "0.333", "p_paper": "1.0"}]
    summary = {"proxy": {"seeds": 3, "models": {"m0": {"mean": 1.0, "val_loss": 0.5}, "m1": {"mean": 3.0, "val_loss": 0.4},
                                                "m2": {"mean": 2.0, "val_loss": 0.3}}}}
    rows = {r["protocol"]: r for r in taus_against_long(long, summary, study, models)}
    assert rows["p64"]["tau_long"] == pytest.approx(0.333) and rows["p64"]["p_long"] == 1.0
    assert rows["proxy"]["tau_long"] == pytest.approx(1 / 3) and rows["proxy"]["tau_long_loss"] == pytest.approx(1.0)
    assert rows["proxy"]["how"] == "per-model means over 3 seed(s)"
    partial = {m: long[m] for m in ("m0", "m1")}  # stopped before m2: its order over m0-m2 is not known
    row = taus_against_long(partial, {}, study, models)[0]
    assert row["tau_long"] is None and "lacks m2" in row["how"]
    swapped = {**long, "m1": {"mean": 83.0, "paper_top1": 61.0}}
    assert "ranks unlike the paper" in taus_against_long(swapped, {}, study, models)[0]["how"]
    no_paper = {m: {"mean": v["mean"]} for m, v in long.items()}
    assert "no paper figures" in taus_against_long(no_paper, {}, study, models)[0]["how"]
