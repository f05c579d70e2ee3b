"""The study report and the Pareto picture it shares with the TUI: file names, what is drawn where,
and the front table's word on the reference."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 - after use('Agg')
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from rich.console import Console  # noqa: E402

from evit_search.cli.render import front_table  # noqa: E402
from evit_search.reporting.pareto import AXES, pareto_info  # noqa: E402
from evit_search.reporting.study import draw_front_axes, draw_strip, write_study_report  # noqa: E402
from evit_search.tui.canvas import draw  # noqa: E402
from evit_search.tui.demo import config as demo_config
from evit_search.tui.demo import make_study  # noqa: E402


@pytest.fixture
def store(tmp_path):
    return make_study(f"sqlite:///{tmp_path / 'r.db'}", "fixture")


def _info(store, axes=AXES[0]):
    s = store.summary()
    return pareto_info(s.records, {r.number for r in s.front}, store.attrs, axes)


def test_two_studies_differing_after_a_dot_get_two_reports(tmp_path):
    url = f"sqlite:///{tmp_path / 'two.db'}"
    a, b = make_study(url, "a-1.25x", 6), make_study(url, "a-1.5x", 6)
    fa, fb = write_study_report(a, tmp_path / "reports"), write_study_report(b, tmp_path / "reports")
    assert fa.md != fb.md and fa.png != fb.png
    assert "study-a-1.25x-" in fa.md.name and "study-a-1.5x-" in fb.md.name
    assert sorted(p.name for p in (tmp_path / "reports").glob("*.md")) == sorted([fa.md.name, fb.md.name])
    assert "`a-1.25x`" in fa.md.read_text() and "`a-1.5x`" in fb.md.read_text()


def test_untrained_trials_have_no_made_up_accuracy(store):
    info = _info(store)
    by_number = {p.number: p for p in info.points}
    for r in store.records():
        if r.accuracy is None and r.ratio is not None:
            assert by_number[r.number].y is None and by_number[r.number].x == r.ratio  # on the strip, at its ratio
    assert {p.kind for p in info.strip} == {"untrained", "failed"} and info.strip_label == "not trained"
    # every drawn point lies inside the axis limits, with a margin
    ys = [v for p in info.points if p.y is not None for v in (p.y, *(p.ci or ()))]
    assert info.ylim[0] < min(ys) and info.ylim[1] > max(ys + [info.reference.y])
    assert info.xlim[0] < min(p.x for p in info.points) and info.xlim[1] > max(p.x for p in info.points)


def test_front_is_a_staircase_with_labels_and_markers(store):
    info = _info(store)
    front = store.summary().front
    assert len(info.front) == len(front) >= 3
    assert [x for x, _ in info.step] == sorted(r.ratio for r in front)  # by ratio, accuracy falling
    assert [y for _, y in info.step] == sorted((r.accuracy for r in front), reverse=True)
    assert all(p.label == f"#{p.number}" for p in info.front)
    assert sorted(p.label for p in info.points if p.paper) == ["M1", "M2", "M5"]
    assert info.reference.label == "ref M4" and (info.reference.x, info.reference.y) == (1.0, 70.0)
    assert info.budget == ("x", 1.25) and info.budget_label == "budget 1.25x"
    assert any(p.ci for p in info.front)  # seed intervals come with the points
    # on axes that are not the study's objectives the front is marked but is no staircase
    assert _info(store, ("flops_m", "accuracy")).step == () and _info(store, ("flops_m", "ratio")).budget == ("y", 1.25)


def test_png_draws_untrained_trials_on_the_strip_only(store):
    info = _info(store)
    fig, (ax, sax) = plt.subplots(2, sharex=True)
    try:
        draw_front_axes(ax, info)
        draw_strip(sax, info)
        scatters = [c for c in ax.collections if isinstance(c, PathCollection)]  # not the error bars' lines
        main_y = {round(float(y), 6) for c in scatters for _, y in c.get_offsets()}
        expected = {round(p.y, 6) for p in info.points if p.y is not None} | {info.reference.y}
        assert main_y == expected  # nothing else: no untrained trial at a made-up accuracy
        strip_x = sorted(round(float(x), 6) for c in sax.collections for x, _ in c.get_offsets())
        assert strip_x == sorted(round(p.x, 6) for p in info.strip)
        labels = ax.get_legend_handles_labels()[1]
        assert "budget 1.25x" in labels and "ref M4" in labels and "seed interval" in labels
        assert {t.get_text() for t in ax.texts} >= {p.label for p in info.front} | {"M1", "M2", "ref M4"}
    finally:
        plt.close(fig)


def test_terminal_plot_draws_the_same_picture(store):
    info = _info(store)
    d = draw(info, 60, 30)
    text = "\n".join(line.plain for line in d.lines)
    for p in info.front:
        assert p.label in text
    assert "not trained" in text and "budget 1.25x" in text and "ref M4" in text and "M5" in text
    assert "↑ proxy top-1 %" in text and "ratio to the reference (same session) →" in text
    strip_row = max(h[1] for h in d.hits)
    assert {h[3] for h in d.hits if h[1] == strip_row} == {p.number for p in info.strip}
    assert len(d.lines) == 30 and all(line.cell_len <= 60 for line in d.lines)


def test_front_table_says_what_ratios_are_relative_to(store):
    console = Console(width=200, record=True)
    console.print(front_table(store.summary(), store.attrs))
    out = " ".join(console.export_text().split())  # the caption wraps
    assert "own session" in out and "median 140.0 img/s" in out and "range 135.8-144.9" in out


@pytest.fixture(scope="module")
def bstore(tmp_path_factory):
    """The fixture study and a trial above the budget by its median whose 5-round interval
    [1.20, 1.31] still contained 1.25x after the second measurement: stored as borderline, on the
    front (the most accurate). Read only by the tests that use it."""
    store = make_study(f"sqlite:///{tmp_path_factory.mktemp('b') / 'b.db'}", "borderline")
    return store, _add_borderline(store)


def _add_borderline(store):
    thr = {"images_per_s": 176.4, "rounds": 5, "ratio_to_reference": 1.26, "ratio_ci_low": 1.20,
           "ratio_ci_high": 1.31, "ci_coverage": 0.9375}
    t = store.ask()
    t.set("arch_id", "borderline")
    t.set("config", demo_config((128, 256, 384), (1, 2, 3), (4, 4, 4)))
    t.set("throughput", {"torch-cpu": thr})
    t.set("reference_throughput", {"torch-cpu": {"images_per_s": 140.0}})
    t.set("budget_verdict", "borderline")
    t.finish("ok", values=[75.0, 1.26], constraints={"throughput_ratio": -0.01}, train={"status": "ok", "top1": 75.0})
    return t.number


def test_front_table_shows_each_ratio_interval_with_its_real_coverage_and_the_budget_verdict(bstore):
    store, number = bstore
    console = Console(width=300, record=True)
    console.print(front_table(store.summary(), store.attrs))
    text = console.export_text()
    (row,) = [line for line in text.splitlines() if "borderline" in line and line.startswith("│")]
    assert row.split("│")[1].strip() == str(number) and "1.26 [1.20, 1.31] 93.8 % CI" in row
    # trials stored before the coverage was: told from their rounds (5: 93.8 %), never a blanket 95 %
    assert "2.09 [2.07, 2.11] 93.8 % CI" in text
    out = " ".join(text.split())
    assert "real coverage (95 % needs 6 rounds or more)" in out and "'borderline' when the interval" in out


def test_show_all_csv_and_json_carry_the_interval_coverage_and_the_verdict(bstore, tmp_path, capsys, monkeypatch):
    import json

    import pandas as pd

    from evit_search.cli import main

    store, number = bstore
    monkeypatch.setenv("COLUMNS", "300")  # rich: the tables unwrapped
    assert main(["show", store.name, "--storage", store.url, "--all", "--csv", str(tmp_path / "t.csv"),
                 "--json", str(tmp_path / "t.json")]) == 0
    text = capsys.readouterr().out
    assert "borderline" in text and "93.8 % CI" in text
    df = pd.read_csv(tmp_path / "t.csv").set_index("number")
    row = df.loc[number]
    assert row["budget_verdict"] == "borderline" and row["torch-cpu_ci_coverage"] == 0.9375
    assert (row["torch-cpu_ratio_ci_low"], row["torch-cpu_ratio_ci_high"]) == (1.20, 1.31)
    assert df.loc[3, "torch-cpu_ci_coverage"] == 0.9375  # from its 5 rounds (stored before the coverage was)
    trials = {t["number"]: t for t in json.loads((tmp_path / "t.json").read_text())["trials"]}
    assert trials[number]["budget_verdict"] == "borderline" and trials[number]["ratio_ci_coverage"] == 0.9375
    assert trials[3]["budget_verdict"] is None


def test_study_report_numbers_are_the_studys(bstore, tmp_path):
    """The report's CSV and front table hold the stored numbers: ratio, its interval with the real
    coverage, the budget verdict, accuracy."""
    import pandas as pd

    store, number = bstore
    files = write_study_report(store, tmp_path)
    s = store.summary()
    df = pd.read_csv(files.csv).set_index("number")
    for r in s.records:
        got = df.loc[r.number]
        assert got["status"] == r.status
        for col, want in (("accuracy", r.accuracy), ("ratio", r.ratio)):
            assert (pd.isna(got[col]) and want is None) or got[col] == pytest.approx(want), (r.number, col)
    md = files.md.read_text()
    table = md.split("## Feasible Pareto front")[1].split("\n\n")[1].splitlines()
    head = [c.strip() for c in table[0].strip("|").split("|")]
    rows = {int(cells[0].split()[0]): dict(zip(head, cells)) for cells in
            ([c.strip() for c in line.strip("|").split("|")] for line in table[2:])}
    assert sorted(rows) == sorted(r.number for r in s.front)
    for r in s.front:
        got = rows[r.number]
        assert float(got["ratio"]) == pytest.approx(r.ratio, abs=5e-4)
        assert float(got["val top-1 %"]) == pytest.approx(r.accuracy, abs=5e-3)
        thr = r.throughput["torch-cpu"]
        assert got["ratio [CI]"] == f"[{thr['ratio_ci_low']:.3f}, {thr['ratio_ci_high']:.3f}] 93.8 % CI"
    assert rows[number]["budget"] == "borderline"


# --------------------------------------------------------------------------- successive halving in the tables
RUNG_FRACTIONS = (1 / 9, 1 / 3, 1.0)


def _add_sh_trial(store, arch, ratio, top1s, paper=None, status="ok", predicted=None):
    """A trial of a successive-halving study: trained to len(top1s) rungs (their accuracies), or
    ``predicted-infeasible`` with its prediction (neither measured nor trained)."""
    t = store.ask()
    t.set("arch_id", arch)
    t.set("config", demo_config((64, 128, 192), (1, 1, 1), (2, 2, 2)))
    t.set("cost", {"params_m": 1.5, "flops_m": 60.0})
    if paper:
        t.set("paper_model", paper)
    if status == "predicted-infeasible":
        t.set("predicted_ratio", predicted)
        t.set("predictor", {"n": 8, "margin": 1.1, "mdape": 0.05, "spearman": 0.9})
        t.finish(status, constraints={"throughput_ratio": 1.25 - predicted},
                 reason=f"predicted {predicted:.2f}x the reference")
        return t.number
    t.set("throughput", {"torch-cpu": {"images_per_s": 140.0 * ratio, "rounds": 5, "ratio_to_reference": ratio}})
    t.set("reference_throughput", {"torch-cpu": {"images_per_s": 140.0}})
    for rung, top1 in enumerate(top1s):
        store.record_rung(t.number, {"rung": rung, "fraction": RUNG_FRACTIONS[rung], "top1": top1, "epochs": 1,
                                     "seconds": 10.0 * (rung + 1), **({"test_top1": top1 - 1} if rung == 2 else {})})
    t.finish("ok", values=[top1s[0], ratio], constraints={"throughput_ratio": 1.25 - ratio},
             train={"status": "ok", "top1": top1s[0], "fraction": RUNG_FRACTIONS[0]})
    return t.number


@pytest.fixture(scope="module")
def shstore(tmp_path_factory):
    """The fixture study and successive-halving trials: ``top`` promoted to the full training (on
    the front), ``low`` fastest at rung 0 (nobody dominates it there), ``beaten`` dominated at
    rung 0, the paper's M3 at rung 0, and one candidate predicted infeasible."""
    store = make_study(f"sqlite:///{tmp_path_factory.mktemp('sh') / 'sh.db'}", "sh")
    n = {"top": _add_sh_trial(store, "top", 2.45, [45.0, 60.0, 80.0]),
         "low": _add_sh_trial(store, "low", 2.5, [40.0]),
         "beaten": _add_sh_trial(store, "beaten", 2.4, [35.0]),
         "m3": _add_sh_trial(store, "m3", 1.3, [30.0], paper="efficientvit_m3"),
         "skipped": _add_sh_trial(store, "skipped", None, [], status="predicted-infeasible", predicted=0.6)}
    return store, n


def _rows(text):
    """The front table's rows by trial number (its first cell)."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0].split(" ")[0].isdigit():
            out[int(cells[0].split(" ")[0])] = line
    return out


def test_front_table_says_at_which_rung_each_accuracy_was_measured(shstore):
    """Each row names the share of the training behind its accuracy; a lower rung's candidates
    that may yet join the front are listed, marked as not comparable, never on the front; a paper
    model at a lower rung is not called dominated by fully trained ones."""
    store, n = shstore
    s = store.summary()
    front = {r.number for r in s.front}
    assert n["top"] in front and not front & {n["low"], n["beaten"], n["m3"]}
    console = Console(width=420, record=True)
    console.print(front_table(s, store.attrs))
    text = console.export_text()
    rows = _rows(text)
    assert "trained" in text.splitlines()[2]  # the header
    assert "100 % rung 2" in rows[n["top"]] and "not comparable" not in rows[n["top"]]
    assert "11 % rung 0" in rows[n["low"]] and "not comparable: a lower rung's accuracy" in rows[n["low"]]
    assert n["beaten"] not in rows  # dominated at its own rung
    assert "11 % rung 0" in rows[n["m3"]] and "not comparable" in rows[n["m3"]] and "dominated" not in rows[n["m3"]]
    for r in s.front:
        if r.number != n["top"]:
            assert "100 %" in rows[r.number]  # trained in full at once
    assert "rows below 100 % are not comparable" in " ".join(text.split())


JSON_KEYS = {"study", "storage", "budget", "reference", "counts", "front", "predictor_error", "trials"}
JSON_TRIAL_KEYS = {"number", "state", "status", "arch_id", "accuracy", "ratio", "feasible", "reason", "params", "config",
                   "cost", "throughput", "constraints", "train", "env", "duplicate_of", "retry_of", "host", "duration_s",
                   "completed_at", "row", "label", "reference_throughput", "checkpoint", "paper_model", "accuracy_ci",
                   "rung", "rungs", "fidelity", "budget_verdict", "ratio_ci_coverage", "delta_to_reference",
                   "predicted_ratio"}


def test_show_csv_and_json_carry_rungs_and_predicted_infeasible(shstore, tmp_path, capsys):
    """show --csv: status predicted-infeasible with its prediction, each trial's rung, fidelity and
    rungs; show --json: the same, under keys that stay as they are (scripts read them)."""
    import json

    import pandas as pd

    from evit_search.cli import main

    store, n = shstore
    assert main(["show", store.name, "--storage", store.url, "--all", "--csv", str(tmp_path / "t.csv"),
                 "--json", str(tmp_path / "t.json")]) == 0
    assert "predicted-infeasible" in capsys.readouterr().out
    df = pd.read_csv(tmp_path / "t.csv").set_index("number")
    skipped = df.loc[n["skipped"]]
    assert skipped["status"] == "predicted-infeasible" and skipped["predicted_ratio"] == 0.6
    assert not skipped["feasible"] and pd.isna(skipped["accuracy"]) and pd.isna(skipped["torch-cpu_ratio"])
    top, low = df.loc[n["top"]], df.loc[n["low"]]
    assert (top["rung"], top["fidelity"], top["accuracy"], top["test_top1"]) == (2, 1.0, 80.0, 79.0)
    assert [e["top1"] for e in json.loads(top["rungs"])] == [45.0, 60.0, 80.0]
    assert (low["rung"], low["accuracy"]) == (0, 40.0) and low["fidelity"] == pytest.approx(1 / 9)
    assert pd.isna(df.loc[0, "rung"]) and df.loc[0, "fidelity"] == 1.0  # trained in full at once

    payload = json.loads((tmp_path / "t.json").read_text())
    assert set(payload) == JSON_KEYS
    trials = {t["number"]: t for t in payload["trials"]}
    assert all(set(t) == JSON_TRIAL_KEYS for t in trials.values())
    assert trials[n["skipped"]]["status"] == "predicted-infeasible" and payload["counts"]["predicted-infeasible"] == 1
    assert trials[n["skipped"]]["predicted_ratio"] == 0.6 and trials[n["top"]]["predicted_ratio"] is None
    assert trials[n["top"]]["rung"] == 2 and [e["rung"] for e in trials[n["top"]]["rungs"]] == [0, 1, 2]
    assert trials[n["low"]]["fidelity"] == pytest.approx(1 / 9) and trials[n["m3"]]["paper_model"] == "efficientvit_m3"
    assert n["top"] in payload["front"] and n["low"] not in payload["front"]


def test_the_summary_lines_best_is_the_front_tables_row(bstore):
    """One source for both: the status line names the trial, accuracy and ratio of the front
    table's most accurate row, as that row prints them."""
    import re

    from evit_search.cli.render import status_line

    store, _ = bstore
    s = store.summary()
    console = Console(width=300, record=True)
    console.print(front_table(s, store.attrs))
    lines = console.export_text().splitlines()
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in lines
            if line.startswith("│") and line.split("│")[1].strip()[:1].isdigit()]
    header = next(line for line in lines if "ratio [CI]" in line)
    cols = [c.strip() for c in header.split("┃")[1:-1]]
    acc, ratio = cols.index("val top-1 %"), cols.index("ratio [CI]")
    front_rows = rows[:len(s.front)]  # the paper's models off the front come after, dimmed
    best_row = max(front_rows, key=lambda r: float(r[acc]))
    m = re.search(r"best on the front: trial (.+?), ([\d.]+)% at ([\d.]+)x", status_line(s))
    assert m, status_line(s)
    assert m.group(1) == best_row[0] and m.group(2) == best_row[acc] and m.group(3) == best_row[ratio].split()[0]
