"""Table 6: the rows file, the comparison maths, rows matched to row 1's throughput on a fake
backend, --json, and a --no-train run."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

import efficientvit
from evit_search.measure.records import ThroughputRecord
from evit_search.reproduce.table6 import AblateConfig, ablate, load_table
from evit_search.reproduce.table6_compare import column_agreement, comparison, results_json
from evit_search.reproduce.table6_report import accuracy_agreement_lines
from evit_search.reproduce.table6_match import Candidate, choose
from evit_search.stats import pct_change, sign_agreement


def test_table_file_builds_eleven_distinct_valid_models():
    base, rows = load_table("table6")
    assert base == "efficientvit_m4" and [r.row for r in rows] == list(range(1, 12))
    ids = set()
    for r in rows:
        cfg = r.config(base)
        ids.add(cfg.arch_id())
        # the declarative file and the registry's named variants are the same models
        assert cfg.arch_id() == efficientvit.get_config(r.model).arch_id(), r.model
    assert len(ids) == 11
    assert rows[0].config(base).arch_id() == efficientvit.get_config("efficientvit_m4").arch_id()


def test_grades():
    from evit_search.reproduce.table6_report import grade

    assert grade(-4.8, -5.9) == "reproduces"
    assert grade(-2.2, -19.4) == "same direction, different size"
    assert grade(-15.3, 28.6) == "does NOT reproduce"
    assert grade(0.4, -0.8) == "reproduces"  # both within 1 %: no change
    assert grade(0.1, 2.2) == "does NOT reproduce"


def test_comparison_maths():
    assert pct_change(110.0, 100.0) == pytest.approx(10.0)
    assert pct_change(None, 100.0) is None and pct_change(5.0, 0.0) is None
    assert sign_agreement([1.0, -2.0, 0.5, None], [2.0, 3.0, 0.2, 1.0]) == (2, 3)
    assert sign_agreement([0.5, -3.0], [-0.8, -2.0], tol=1.0) == (2, 2)  # 0.5 and -0.8 are within 1 %: both "no change"
    rows = pd.DataFrame({
        "row": [1, 2, 3], "top1": [70.0, 69.0, 71.0], "paper_top1": [71.3, 68.3, 70.2],
        "top1_delta": [0.0, -1.0, 1.0], "paper_top1_delta": [0.0, -3.0, -1.1],
        "onnx-cpu_delta_pct": [0.0, 5.0, 20.0], "onnx-cpu_paper_delta_pct": [0.0, 5.4, 3.4],
    }).to_dict("records")
    agree = column_agreement(rows, ["onnx-cpu"])
    assert agree["top1"] == {"agree": 1, "n": 2}
    assert agree["onnx-cpu"]["agree"] == 2
    assert agree["kendall_top1"] == pytest.approx(1 / 3)  # pairs (1,2), (2,3) concordant; (1,3) not


@pytest.mark.slow
def test_no_train_run_with_tiny_budgets(tmp_path):
    db = tmp_path / "a.db"
    args = [sys.executable, "-m", "evit_search", "ablate", "table6", "--no-train", "--img-size", "64",
            "--backends", "torch-cpu,onnx-cpu,cuda", "--seconds", "0.05", "--warmup", "0.05", "--rounds", "2",
            "--max-rounds", "2", "--storage", str(db), "--reports", str(tmp_path / "rep"), "--json", str(tmp_path / "t6.json"),
            "--protocol", "proxy-fast", "--data", "synthetic", "--match-throughput", "2"]  # the fake backend tests 3, 4, 8
    out = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Table 6" in out.stdout
    csv = next((tmp_path / "rep").glob("ablate-*.csv"))
    df = pd.read_csv(csv)
    assert len(df) == 11 and (df["onnx-cpu_images_per_s"] > 0).all() and (df["torch-cpu_images_per_s"] > 0).all()
    assert df.loc[df.row == 1, "onnx-cpu_delta_pct"].iloc[0] == pytest.approx(0.0)
    assert df["onnx-cpu_paper_delta_pct"].notna().all() and df["params_m"].notna().all()
    assert df["zc_synflow"].notna().all()
    md = next((tmp_path / "rep").glob("ablate-*.md")).read_text()
    assert "What reproduces" in md and "Rows at matched throughput" in md and "Calibration" in md
    doc = json.loads((tmp_path / "t6.json").read_text())
    assert [r["row"] for r in doc["rows"]] == list(range(1, 12)) and doc["kendall_tau_paper"] is None
    assert [r["row"] for r in doc["rows"] if r["match"] is not None] == [2]
    # resumable: a second run finds the match, the measurement and every row stored, and measures nothing again
    out2 = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert out2.returncode == 0, out2.stderr[-3000:]
    from evit_search import storage as st

    study = st.load_study(st.list_studies(str(db))[0]["name"], str(db))
    assert len(study) == 11


# --------------------------------------------------------------------------- matched throughput
def _cand(label, kind="depth", depths=(1, 2, 3)):
    return Candidate(label, 2, kind, depths, (128, 256, 384), 300.0, {"label": label})


def test_choose_takes_the_closest_and_prefers_depths():
    cands = [_cand("stated"), _cand("a", depths=(2, 2, 3)), _cand("b", depths=(3, 2, 3)), _cand("w", "width")]
    m = choose(2, cands, {"stated": 1.11, "a": 0.955, "b": 1.04, "w": 1.001}, "torch-cpu")
    # the width variant is closer, but a depth variant is within 5 %: depths come first
    assert m.matched and m.chosen["label"] == "b" and m.chosen["ratio"] == 1.04
    assert m.stated["ratio"] == 1.11 and len(m.tried) == 4
    m = choose(2, cands, {"stated": 1.2, "a": 0.8, "b": None, "w": 0.97}, "torch-cpu")
    assert m.matched and m.chosen["label"] == "w"  # no depth within 5 %: then widths
    m = choose(2, cands, {"stated": 1.2, "a": 0.7, "b": None, "w": 0.9}, "torch-cpu")
    assert not m.matched and m.chosen["label"] == "w" and "no match within 5 %" in m.text()
    m = choose(2, cands, {}, "torch-cpu")  # nothing measured: the stated config stays, not matched
    assert not m.matched and m.chosen["label"] == "stated"
    # a match whose CI reaches outside the band is said to be too noisy to tell (a busy host)
    ratios = {"stated": 1.2, "a": 1.02, "b": None, "w": 0.9}
    m = choose(2, cands, ratios, "torch-cpu", cis={"a": (0.93, 1.1)})
    assert m.matched and m.noisy and "too noisy" in m.text() and "[0.930, 1.100] CI of unknown coverage" in m.text()
    # the interval says the coverage its rounds give (5 rounds: 93.75 %), never a blanket 95 %
    m = choose(2, cands, ratios, "torch-cpu", cis={"a": (0.93, 1.1, 0.9375)})
    assert "1.020x [0.930, 1.100] 93.8 % CI" in m.text() and "its 93.8 % CI reaches outside +-5 %" in m.text()
    assert "95 %" not in m.text()
    from evit_search.reproduce.table6_report import verdicts

    row = {"row": 2, "ablation": "x", "top1_delta": None, "paper_top1_delta": None}
    (line,) = verdicts([row], [], {2: m})
    assert "but its 93.8 % CI [0.930, 1.100] reaches outside +-5 %" in line and "95 %" not in line
    assert not choose(2, cands, ratios, "torch-cpu", cis={"a": (1.0, 1.04)}).noisy


class FakeBackend:
    """Known ratios to row 1, as functions of the variant: exactly one variant of rows 2 and 3
    (by depth) and of row 8 (by width, as no depth gets within 5 %) is at 1.0; row 4 (N=3) is
    always below 0.8, so nothing matches. Records every session it is asked for."""

    def __init__(self):
        self.calls = []

    @staticmethod
    def ratio(spec):
        cfg = efficientvit.EfficientViTConfig.from_dict(spec.config)
        s0, blocks, width = cfg.stages[0], sum(s.depth for s in cfg.stages), sum(s.dim for s in cfg.stages)
        if cfg.block == "swin":
            return 1.0 + 0.1 * (8 - blocks)
        if s0.n_ffn == 2:
            return 1.0 + 0.1 * (3 - blocks)
        if s0.n_ffn == 3:
            return 0.78 - 0.02 * blocks
        if s0.ffn_ratio == 4:
            return 0.5 + 0.05 * (6 - blocks) + (768 - width) / 288
        return 1.0

    def __call__(self, specs, backends, settings, reference=None, listener=None):
        self.calls.append([s.label for s in specs])
        return [ThroughputRecord(s.label, b, "ok", images_per_s=100.0 * self.ratio(s), ratio_to_reference=self.ratio(s),
                                 ratio_ci_low=self.ratio(s) - 0.01, ratio_ci_high=self.ratio(s) + 0.01,
                                 rounds=5, ci_coverage=0.9375,  # 5 rounds: the whole range, 93.75 %
                                 env={"machine": "fake"}) for b in backends for s in specs]


@pytest.fixture(scope="module")
def fake_ablation(tmp_path_factory):
    """Rows 1-4 and 8 of Table 6 (the matched ones) at 32 px, twice, on the fake backend."""
    tmp = tmp_path_factory.mktemp("abl")
    table = tmp / "t6.yaml"
    base, rows = load_table("table6")
    table.write_text(yaml.safe_dump({"name": "t6", "base": base, "rows": [
        {"row": r.row, "model": r.model, "ablation": r.ablation, "overrides": {k: list(v) if isinstance(v, tuple) else v
                                                                               for k, v in r.overrides.items()}}
        for r in rows if r.row in (1, 2, 3, 4, 8)]}))
    fake = FakeBackend()
    cfg = AblateConfig(table=str(table), backends=["torch-cpu", "onnx-cpu"], protocol="proxy-fast", data="synthetic",
                       train=False, storage=str(tmp / "a.db"), img_size=32, zerocost_batch=8)
    first = ablate(cfg, measure_fn=fake)
    calls_first = len(fake.calls)
    second = ablate(cfg, measure_fn=fake)
    return fake, calls_first, first, second, tmp


def test_match_throughput_picks_the_closest_variant_on_a_fake_backend(fake_ablation):
    fake, _, ab, _, _ = fake_ablation
    session = fake.calls[0]  # the match: row 1 and every variant, in one session on the first backend
    assert session[0] == "row 1" and len(session) - 1 <= 24
    assert sorted(ab.matches) == [2, 3, 4, 8]
    for row in (2, 3, 8):
        m = ab.matches[row]
        measured = {t["label"]: t["ratio"] for t in m.tried}
        assert m.chosen["label"] == min(measured, key=lambda k: abs(measured[k] - 1.0)), (row, measured)
        assert m.matched and m.chosen["ratio"] == pytest.approx(1.0) and m.chosen["kind"] != "stated", (row, measured)
        assert not m.noisy and m.chosen["ci_low"] == pytest.approx(0.99)
        assert all(1 <= d <= 4 for t in m.tried for d in t["depths"])
        # the chosen variant is the one measured on every backend and stored as the row
        row_rec = next(r for r in ab.rows if r["row"] == row)
        assert row_rec["depths"] == m.chosen["depths"] and row_rec["widths"] == m.chosen["widths"]
        assert row_rec["torch-cpu_ratio"] == pytest.approx(m.chosen["ratio"])
        assert row_rec["onnx-cpu_ratio"] == pytest.approx(m.chosen["ratio"])
    assert ab.matches[2].chosen["kind"] == "depth" and ab.matches[3].chosen["kind"] == "depth"
    # row 8: no depth within 5 %, so a narrower variant, every width a multiple of lcm(8, heads)
    assert ab.matches[8].chosen["kind"] == "width"
    assert all(w % 8 == 0 for t in ab.matches[8].tried for w in t["widths"])


def test_match_throughput_says_when_nothing_is_within_5_percent(fake_ablation, tmp_path):
    _, _, ab, _, _ = fake_ablation
    m = ab.matches[4]
    assert not m.matched and "no match within 5 %" in m.text()
    measured = {t["label"]: t["ratio"] for t in m.tried}
    assert m.chosen["ratio"] == max(measured.values())  # the closest (all are below 1.0)
    from evit_search.reproduce.table6_report import write_report

    files = write_report(ab, ["torch-cpu", "onnx-cpu"], tmp_path, "synthetic", False)
    md = files.md.read_text()
    assert "no match within 5 %" in md and "Rows at matched throughput" in md and "Zero-cost scores" in md
    # every ratio interval printed says its real coverage (5 rounds: 93.8 %), in the match lines and the main session
    assert "1.000x [0.990, 1.010] 93.8 % CI row 1 on torch-cpu" in md
    assert "in the main session: torch-cpu 1.000x [0.990, 1.010] 93.8 % CI, onnx-cpu 1.000x [0.990, 1.010] 93.8 % CI" in md
    assert "95 % CI [" not in md and "] 95 %" not in md
    csv = pd.read_csv(files.csv)
    assert (csv["torch-cpu_ratio_ci_coverage"].dropna() == 0.9375).all() and csv["torch-cpu_ratio_ci_coverage"].notna().any()
    assert "tracks size" in md or "more than size" in md


def test_a_second_no_train_run_measures_nothing(fake_ablation):
    fake, calls_first, first, second, _ = fake_ablation
    assert calls_first == 2 and len(fake.calls) == 2  # the match and the main session, once
    assert {r: m.chosen for r, m in second.matches.items()} == {r: m.chosen for r, m in first.matches.items()}
    assert len(second.store) == 5  # every row stored once
    assert [r["torch-cpu_ratio"] for r in second.rows] == [r["torch-cpu_ratio"] for r in first.rows]


def test_rows_carry_zero_cost_scores_and_a_calibration(fake_ablation):
    _, _, ab, _, _ = fake_ablation
    for r in ab.rows:
        if r["row"] in (1, 2, 3, 4, 8):
            assert set(r["zerocost"]) == {"synflow", "snip", "grad_norm", "naswot"}, r["row"]
        else:  # the paper's rows that this table does not have
            assert r["zerocost"] is None and r["params_m"] is None
    names = [t.name for t in ab.calibration.taus]
    assert names == ["synflow", "snip", "grad_norm", "naswot", "params_m", "flops_m"]
    assert all(t.tau_proxy is None for t in ab.calibration.taus)  # nothing trained
    assert ab.calibration.tau("params_m").n_paper == 5


def test_json_holds_the_keys(fake_ablation):
    _, _, ab, _, _ = fake_ablation
    doc = json.loads(json.dumps(results_json(ab.rows, ["torch-cpu", "onnx-cpu"],
                                             {r: m.to_dict() for r, m in ab.matches.items()},
                                             ab.calibration.to_dict(), {"study": ab.store.name})))
    for key in ("rows", "significant_rows", "sign_agreement_significant", "kendall_tau_paper"):
        assert key in doc
    assert doc["kendall_tau_paper"] is None and doc["significant_rows"] is None  # --no-train
    assert len(doc["rows"]) == 11  # the paper's rows, ours where measured
    for r in doc["rows"]:
        for key in ("row", "depths", "throughput_ratio", "delta", "ci_low", "ci_high", "verdict", "paper_delta"):
            assert key in r
        assert set(r["throughput_ratio"]) == {"torch-cpu", "onnx-cpu"}
        assert r["delta"] is None and r["verdict"] is None and r["ci_low"] is None
        assert r["paper_delta"] is not None
    assert doc["rows"][0]["throughput_ratio"]["torch-cpu"] == 1.0
    assert doc["rows"][1]["match"]["stated_depths"] == [2, 2, 3]
    assert doc["rows"][0]["throughput_ratio_ci_coverage"]["torch-cpu"] == 0.9375
    assert doc["rows"][1]["match"]["ratio_ci_coverage"] == 0.9375


@pytest.mark.parametrize("rows", ["1,2", "2,12", "two"])
def test_bad_match_rows_are_one_line_and_store_nothing(tmp_path, rows):
    db = tmp_path / "s.db"
    out = subprocess.run([sys.executable, "-m", "evit_search", "ablate", "table6", "--no-train", "--match-throughput", rows,
                          "--storage", str(db)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "--match-throughput" in lines[0], out.stderr
    assert not db.exists()


def _rec(number: int, row: int, seed: int, top1: float):
    from evit_search.storage import TrialRecord

    return TrialRecord(number, "complete", "ok", row=row, accuracy=top1, attrs={"seed": seed})


def test_seed_noise_gives_each_row_an_interval_and_a_verdict():
    # row 1: 80, 81 (mean 80.5); row 2: 70, 71 (mean 70.5, 10 below); row 3: 80.5, 81.5 (mean 81, +0.5),
    # row 3 with other seeds than rows 1 and 2: the seeds are not blocks, the noise is pooled
    recs = [_rec(0, 1, 0, 80.0), _rec(1, 1, 1, 81.0), _rec(2, 2, 0, 70.0), _rec(3, 2, 1, 71.0),
            _rec(4, 3, 2, 80.5), _rec(5, 3, 3, 81.5)]
    rows = {r["row"]: r for r in comparison(recs, [])}
    assert rows[1]["noise_model"] == "pooled" and rows[1]["seed_sd_blocked"] is None
    sd = 0.5 ** 0.5  # each pair differs by 1: variance 0.5 in every row, pooled over 3 degrees of freedom
    assert rows[1]["seed_sd_pooled"] == pytest.approx(sd) and rows[1]["seed_sd_df"] == 3
    assert rows[2]["top1"] == pytest.approx(70.5) and rows[2]["n_seeds"] == 2 and rows[2]["seeds"] == [0, 1]
    assert rows[2]["top1_runs"] == [70.0, 71.0] and rows[3]["top1_runs"] == [80.5, 81.5]  # one per seed, in order
    assert rows[3]["seeds"] == [2, 3]
    half = 3.182446305 * sd * (2 / 2) ** 0.5  # t(0.975, 3) * sd * sqrt(1/2 + 1/2)
    assert rows[2]["top1_delta_ci_low"] == pytest.approx(-10.0 - half, abs=1e-6)
    assert rows[2]["verdict"] == "worse" and rows[3]["verdict"] == "indistinguishable"
    assert rows[1]["verdict"] is None  # the reference row has no delta to itself
    agree = column_agreement(list(rows.values()), [])
    # the paper: row 2 is 3.0 below row 1 (same sign as ours); row 3 is inside our noise, not counted
    assert agree["significant"] == {"agree": 1, "n": 1, "rows": [2], "noise_measured": True}
    assert 0 <= agree["kendall_top1_p"] <= 1


def test_rows_trained_with_the_same_seeds_are_compared_paired_by_seed():
    """Seed 1 lifts every row by about a point (same data order): paired by seed, row 2's +0.5 is
    outside the noise; from the pooled SD, which counts the shift as noise, it would not be."""
    from evit_search.stats import delta_interval

    runs = {1: (80.0, 81.0), 2: (80.6, 81.4), 3: (70.0, 71.0)}
    # each row's seed 1 stored before its seed 0: top1_runs still follows "seeds"
    recs = [_rec(2 * (row - 1) + (1 - s), row, s, v[s]) for row, v in runs.items() for s in (1, 0)]
    rows = {r["row"]: r for r in comparison(recs, [])}
    assert rows[2]["seeds"] == [0, 1] and rows[2]["top1_runs"] == [80.6, 81.4]
    # residuals of row + seed: +-1/30 in rows 1 and 3, +-1/15 in row 2: SS 0.04/3 over (3-1)(2-1) = 2 df
    assert rows[2]["noise_model"] == "paired by seed" and rows[2]["seed_sd_blocked_df"] == 2
    assert rows[2]["seed_sd_blocked"] == pytest.approx((0.02 / 3) ** 0.5)
    half = 4.30265273 * (0.02 / 3) ** 0.5  # t(0.975, 2) * sd * sqrt(2/2)
    assert rows[2]["top1_delta_ci_low"] == pytest.approx(0.5 - half, abs=1e-6) and rows[2]["verdict"] == "better"
    pooled = delta_interval(81.0, 2, 80.5, 2, rows[2]["seed_sd_pooled"], rows[2]["seed_sd_df"])
    assert pooled.verdict == "indistinguishable" and rows[3]["verdict"] == "worse"
    # seed means 76.87 and 77.80 against a residual variance of 0.02/3: F = 196 on (1, 2) df
    assert rows[2]["seed_shift_p"] == pytest.approx(0.00506, abs=1e-4)
    text = "\n".join(accuracy_agreement_lines(column_agreement(list(rows.values()), []), list(rows.values())))
    assert "paired by seed" in text and "residual SD of row + seed, 0.08 points (2 degrees" in text
    assert "F test p = 0.00506" in text and "per comparison, not corrected for the 2 comparisons" in text


def test_a_row_missing_a_seed_falls_back_to_the_pooled_noise():
    # row 3's seed 1 failed (no run): the seeds are no longer blocks of every row
    recs = [_rec(0, 1, 0, 80.0), _rec(1, 1, 1, 81.0), _rec(2, 2, 0, 80.6), _rec(3, 2, 1, 81.4), _rec(4, 3, 0, 70.0)]
    rows = {r["row"]: r for r in comparison(recs, [])}
    assert rows[2]["noise_model"] == "pooled" and rows[2]["seed_sd_blocked"] is None and rows[2]["seed_shift_p"] is None
    assert rows[2]["verdict"] == "indistinguishable"  # the pooled SD counts seed 1's lift as noise
    text = "\n".join(accuracy_agreement_lines(column_agreement(list(rows.values()), []), list(rows.values())))
    assert "pooled over the rows" in text and "paired by seed" not in text


def test_blocked_sd_needs_every_design_run_with_the_same_seeds():
    from evit_search.stats import blocked_sd

    assert blocked_sd({1: {0: 80.0, 1: 81.0}, 2: {0: 70.0, 2: 71.0}}) == (None, 0)  # different seeds
    assert blocked_sd({1: {0: 80.0}, 2: {0: 70.0}}) == (None, 0)  # one seed
    assert blocked_sd({1: {0: 80.0, 1: 81.0}}) == (None, 0)  # one design
    assert blocked_sd({1: {0: 80.0, 1: 81.0}, 2: {0: 70.0, 1: 71.0}}) == (None, 0)  # an exact fit: no noise seen
    sd, df = blocked_sd({1: {0: 80.0, 1: 81.0}, 2: {0: 70.0, 1: 72.0}})  # residuals +-0.25: SS 0.25, 1 df
    assert df == 1 and sd == pytest.approx(0.5)


def test_one_seed_per_row_claims_nothing():
    rows = comparison([_rec(0, 1, 0, 80.0), _rec(1, 2, 0, 70.0)], [])
    assert rows[1]["top1_delta"] == pytest.approx(-10.0) and rows[1]["verdict"] is None
    assert rows[1]["top1_delta_ci_low"] is None
    assert column_agreement(rows, [])["significant"]["noise_measured"] is False


@pytest.mark.slow
def test_trained_rows_with_seeds_resume_and_write_json(tmp_path):
    """Rows 1-3 trained with two seeds each at 32 px on synthetic data (the fake backend times them);
    a second run trains nothing, and --json carries intervals and verdicts."""
    table = tmp_path / "t6.yaml"
    base, rows = load_table("table6")
    table.write_text(yaml.safe_dump({"name": "t6", "base": base, "rows": [
        {"row": r.row, "model": r.model, "ablation": r.ablation, "overrides": {k: list(v) if isinstance(v, tuple) else v
                                                                               for k, v in r.overrides.items()}}
        for r in rows if r.row in (1, 2, 3)]}))
    cfg = AblateConfig(table=str(table), backends=["torch-cpu"], protocol="proxy-fast", data="synthetic",
                       storage=str(tmp_path / "a.db"), img_size=32, zerocost=False, match_rows=(), seeds=2)
    ab = ablate(cfg, measure_fn=FakeBackend())
    ours = {r["row"]: r for r in ab.rows if r["row"] in (1, 2, 3)}
    assert all(r["n_seeds"] == 2 and r["seeds"] == [0, 1] for r in ours.values())
    assert ours[2]["seed_sd_df"] == 3 and ours[2]["verdict"] in ("better", "worse", "indistinguishable")
    assert ours[2]["top1_delta_ci_low"] <= ours[2]["top1_delta"] <= ours[2]["top1_delta_ci_high"]
    again = ablate(cfg, measure_fn=FakeBackend())
    assert len(again.store) == 6 and [r["top1"] for r in again.rows] == [r["top1"] for r in ab.rows]
    doc = results_json(again.rows, ["torch-cpu"], {}, None, {})
    assert isinstance(doc["significant_rows"], list) and doc["seed_sd_df"] == 3
    assert doc["rows"][1]["verdict"] == ours[2]["verdict"] and doc["rows"][1]["n_seeds"] == 2
    assert doc["rows"][1]["top1_runs"] == ours[2]["top1_runs"] and len(ours[2]["top1_runs"]) == 2
    assert sum(ours[2]["top1_runs"]) / 2 == pytest.approx(ours[2]["top1"])


def test_all_eleven_rows_with_tied_paper_values_give_a_tau_and_p():
    # the paper's Table 6 top-1 has ties (70.2, 69.8, 69.9 twice each): the exact p refuses them
    recs = [_rec(i, row, 0, 70.0 - 0.1 * row) for i, row in enumerate(range(1, 12))]
    agree = column_agreement(comparison(recs, []), [])
    assert -1 <= agree["kendall_top1"] <= 1 and 0 <= agree["kendall_top1_p"] <= 1
    assert agree["kendall_top1_p_exact"] is False  # and the report says the p is asymptotic
    from evit_search.stats import kendall_method

    assert kendall_method([1.0, 2.0, 3.0], [3.0, 1.0, 2.0]) == "exact" and kendall_method([1.0, 1.0], [1.0, 2.0]) == "auto"
    assert "asymptotic: the values have ties" in "\n".join(accuracy_agreement_lines(agree, comparison(recs, [])))


def test_a_rematched_rows_old_runs_are_not_averaged_in():
    old, new = _rec(1, 2, 0, 50.0), _rec(2, 2, 0, 70.0)
    old.arch_id, new.arch_id = "old-depths", "new-depths"
    rows = {r["row"]: r for r in comparison([_rec(0, 1, 0, 80.0), old, new], [])}
    assert rows[2]["top1"] == 70.0 and rows[2]["n_seeds"] == 1


def test_plot_draws_our_intervals_and_whole_words():
    from evit_search.reproduce.table6_report import _short, _xerr

    rest = pd.DataFrame({"top1_delta": [0.3, -6.2, None], "top1_delta_ci_low": [-0.8, -7.3, None],
                         "top1_delta_ci_high": [1.4, -5.1, None], "cpu_delta_pct": [-4.7, 2.0, 1.0],
                         "cpu_ratio_ci_low": [0.92, None, 0.99], "cpu_ratio_ci_high": [0.99, None, 1.05]})
    lo, hi = _xerr(rest, "top1_delta", "top1_delta_ci_low", "top1_delta_ci_high", 1.0, 0.0)
    assert lo == pytest.approx([1.1, 1.1, 0.0]) and hi == pytest.approx([1.1, 1.1, 0.0])  # no delta: no bar
    lo, hi = _xerr(rest, "cpu_delta_pct", "cpu_ratio_ci_low", "cpu_ratio_ci_high", 100.0, 1.0)
    assert lo == pytest.approx([3.3, 0.0, 2.0]) and hi == pytest.approx([3.7, 0.0, 4.0])  # ratios as Δ%
    assert _xerr(rest.assign(cpu_ratio_ci_low=None), "cpu_delta_pct", "cpu_ratio_ci_low", "cpu_ratio_ci_high",
                 100.0, 1.0) is None
    assert _short("N = 1 -> 2 (fewer blocks to keep throughput)") == "N = 1 -> 2"
    assert _short("Sandwich -> Swin block with a very long tail") == "Sandwich -> Swin block…"
    assert _short("abc def ghi", 7) == "abc def…"  # a cut that ends a word keeps it


def test_plot_titles_claim_an_interval_only_where_one_is_drawn(monkeypatch, tmp_path):
    import contextlib

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evit_search.reproduce import table6_report

    kept = []

    @contextlib.contextmanager
    def keep(path, **kw):
        fig, axes = plt.subplots(**kw)
        kept.append(axes)
        yield fig, axes
        plt.close(fig)

    monkeypatch.setattr(table6_report, "figure", keep)
    base = {"ablation": "x", "paper_top1_delta": 0.1, "cpu_delta_pct": 1.0, "cpu_paper_delta_pct": 2.0,
            "cpu_ratio_ci_low": 1.0, "cpu_ratio_ci_high": 1.02}
    one_seed = [{**base, "row": 1, "top1_delta": 0.0}, {**base, "row": 2, "top1_delta": 0.4}]
    seeds = [{**r, "top1_delta_ci_low": -0.5, "top1_delta_ci_high": 1.3} for r in one_seed]
    titles = []
    for rows in (one_seed, seeds):
        table6_report._plot(rows, ["cpu"], tmp_path / "t.png", "t")
        titles.append([ax.get_title() for ax in kept[-1][0]])
    assert "one seed: no interval" in titles[0][0] and "CI" not in titles[0][0]
    assert "95 % CI from the seed noise" in titles[1][0]
    assert "with its CI" in titles[0][1] and "with its CI" in titles[1][1]  # throughput: measured with intervals


def test_protocol_taus_per_protocol_per_seed_and_between_protocols():
    from evit_search.reproduce.table6_compare import protocol_taus

    paper = [71.3, 68.3, 70.2, 65.7]  # rows 1-4 of the paper's Table 6 (no ties): order 1 > 3 > 2 > 4

    def doc(runs: list[list[float]], seeds: list[int]) -> dict:
        return {"seed_sd_pooled": 0.5, "seed_sd_blocked": 0.3, "noise_model": "paired by seed", "significant_rows": [],
                "rows": [{"row": i + 1, "paper_top1": paper[i], "top1": sum(v) / len(v), "n_seeds": len(v),
                          "seeds": seeds, "top1_runs": v} for i, v in enumerate(runs)]}

    # "near": the paper's order but rows 2 and 3 swapped, with both seeds; "flip": seed 3 reversed by a
    # wide margin, seed 7 the paper's order by a narrow one, so its means are reversed
    docs = {"near": doc([[4.0, 4.0], [3.0, 3.0], [2.0, 2.0], [1.0, 1.0]], [3, 7]),
            "flip": doc([[10.0, 4.0], [30.0, 2.0], [20.0, 3.0], [40.0, 1.0]], [3, 7])}
    rows, pairs = protocol_taus(docs)
    near, flip = rows
    assert near["tau_paper"] == pytest.approx(4 / 6) and near["p_method"] == "exact" and near["rows"] == 4
    assert near["tau_paper_per_seed"] == {3: pytest.approx(4 / 6), 7: pytest.approx(4 / 6)}
    assert near["seeds_per_row"] == 2 and near["noise_model"] == "paired by seed" and near["seed_sd_blocked"] == 0.3
    assert flip["tau_paper_per_seed"] == {3: pytest.approx(-1.0), 7: pytest.approx(1.0)}
    assert flip["tau_paper"] == pytest.approx(-1.0)
    # near against flip: 1 concordant pair of 6 (rows 2, 3); exact two-sided p at n = 4: 8 of the 24 orders
    assert pairs == [{"a": "near", "b": "flip", "rows": 4, "tau": pytest.approx(-4 / 6), "p": pytest.approx(8 / 24)}]
    one, _ = protocol_taus({"one": doc([[4.0]], [0])})
    assert one[0]["rows"] == 1 and one[0]["p_method"] is None and one[0]["tau_paper_per_seed"] == {}
