"""The TUI: Pilot tests for behaviour, SVG snapshots for looks, on generated fixture studies."""

import os
import subprocess
import sys
import threading

import pytest
import yaml

from evit_search import storage as st
from evit_search.errors import StorageError
from evit_search.reporting.pareto import AXES
from evit_search.tui import first_read
from evit_search.tui import view as D
from evit_search.tui.app import EvitTui, open_app
from evit_search.tui.demo import add_trial, make_ablation_study, make_study
from evit_search.tui.screens.compare import CompareScreen
from evit_search.tui.screens.detail import DetailScreen
from evit_search.tui.screens.help import HELP
from evit_search.tui.trial_text import config_yaml, trained_config
from evit_search.tui.widgets import TrialsTable

SIZE = (140, 40)


@pytest.fixture
def url(tmp_path):
    u = f"sqlite:///{tmp_path / 'tui.db'}"
    make_study(u)
    return u


def _front_by_hand(records) -> set[int]:
    """The feasible front by brute force (both objectives up), not by the code under test."""
    ok = [r for r in records if r.status == "ok" and r.feasible and r.accuracy is not None and r.ratio is not None]
    return {r.number for r in ok if not any(o.accuracy >= r.accuracy and o.ratio >= r.ratio
                                            and (o.accuracy, o.ratio) != (r.accuracy, r.ratio) for o in ok)}


def test_data_layer_filters_and_sorts(url):
    view = D.load_view("fixture", url)
    assert view.front == _front_by_hand(view.records) == {3, 4, 7, 9, 11, 14}  # the fixture's, by design
    assert len(D.filtered(view, "all")) == 24
    feas = D.filtered(view, "feasible")
    assert feas and all(r.feasible for r in feas)
    assert {r.number for r in D.filtered(view, "front")} == _front_by_hand(view.records)
    assert all(r.status == "failed" for r in D.filtered(view, "failed"))
    assert [r.number for r in D.filtered(view, "all", "H=4/")] == [r.number for r in view.records if r.config["stages"][0]["num_heads"] == 4]
    assert [r.number for r in D.filtered(view, "all", "M2")] == [1]  # paper models by name
    acc = D.sort_records(view.records, "accuracy", reverse=True)
    present = [r.accuracy for r in acc if r.accuracy is not None]
    assert present == sorted(present, reverse=True) and acc[-1].accuracy is None  # missing last


def _sorted_by(recs, key, reverse):
    values = [D.cell(r, key) for r in recs]
    present = [v for v in values if v is not None]
    return present == sorted(present, reverse=reverse) and values[len(present):] == [None] * (len(values) - len(present))


def _labels(table):
    return [str(c.label) for c in table.columns.values()]


async def test_keyboard_sort_by_every_column(url):
    app = EvitTui("fixture", url, refresh_s=60)
    async with app.run_test(size=SIZE) as pilot:
        table = await _settle(pilot)
        keys = [k for k, _ in table.keys]
        assert table.state.sort_key == "number" and _labels(table)[0] == "# ▲"
        for i, key in enumerate(keys[1:] + keys[:1], start=1):  # > walks every column, then wraps to the first
            await pilot.press("greater_than_sign")
            assert table.state.sort_key == key and not table.state.reverse
            assert _sorted_by(table.shown, key, False), key
            label = _labels(table)[keys.index(key)]
            assert label.endswith(" ▲") and sum("▲" in s or "▼" in s for s in _labels(table)) == 1
            await pilot.press("s")  # reverses, the arrow follows
            assert table.state.reverse and _sorted_by(table.shown, key, True), key
            assert _labels(table)[keys.index(key)].endswith(" ▼")
        await pilot.press("less_than_sign")
        assert table.state.sort_key == keys[-1]
        # the filter line says it too, not only the header
        assert "sort: FFN ▲" in str(app.main.query_one("#filter-line").render())


async def test_header_click_sorts_that_column(url):
    app = EvitTui("fixture", url, refresh_s=60)
    async with app.run_test(size=SIZE) as pilot:
        table = await _settle(pilot)
        at = [k for k, _ in table.keys].index("ratio")
        x = sum(c.get_render_width(table) for c in list(table.columns.values())[:at]) + 2  # inside ratio's header
        await pilot.click("#trials", offset=(x, 0))
        await pilot.pause()
        assert table.state.sort_key == "ratio" and _sorted_by(table.shown, "ratio", False)


async def test_filters_text_filter_line_and_escape(url):
    app = EvitTui("fixture", url, refresh_s=60)
    async with app.run_test(size=SIZE) as pilot:
        table = await _settle(pilot)
        line = app.main.query_one("#filter-line")
        await pilot.press("f")
        assert table.shown and all(r.feasible for r in table.shown)
        assert "feasible" in str(line.render())
        await pilot.press("p")
        assert {r.number for r in table.shown} == _front_by_hand(app.view.records) and len(table.shown) >= 3
        await pilot.press("x")
        assert table.shown and all(r.status == "failed" for r in table.shown)
        await pilot.press("a", "slash", *"C=96/")
        await pilot.pause()
        c96 = [r.number for r in app.view.records if r.config["stages"][0]["dim"] == 96]
        assert [r.number for r in table.shown] == c96 and 0 < len(c96) < 24
        assert 'text "C=96/"' in str(line.render()) and line.region.height >= 1
        await pilot.press("escape")  # esc in the input clears the text filter
        await pilot.pause()
        assert len(table.shown) == 24 and table.state.query == "" and app.focused is table
        assert "text" not in str(line.render())
        await pilot.press("slash", *"C=96/", "enter")  # enter keeps it ...
        await pilot.pause()
        assert len(table.shown) == len(c96) and app.focused is table
        await pilot.press("escape")  # ... and esc on the table clears it
        await pilot.pause()
        assert len(table.shown) == 24
        await pilot.press("f", "slash", *"C=96/", "enter", "a")  # a: every trial, no text filter either
        await pilot.pause()
        assert len(table.shown) == 24 and table.state == D.TableState(sort_key="number")


async def test_open_candidate_detail_says_which_config_is_which(url):
    app = EvitTui("fixture", url, refresh_s=60)
    copied = []
    app.copy_to_clipboard = copied.append
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("down", "down", "down", "enter")  # trial 3: trained, on the front
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen) and app.screen.rec.number == 3
        text = str(app.screen.query_one("#detail-text").render())
        assert "Trial #3" in text and "on the front" in text and "torch-cpu" in text and "Fixture CPU" in text
        measured, trained = text.index("Measured config"), text.index("Trained config")
        assert "3x224x224, 1000 classes" in text[measured:trained] and "1x64x64, 10 classes" in text[trained:]
        assert "measured in this trial's own session" in text
        await pilot.press("y")
        doc = yaml.safe_load(copied[-1])
        assert doc["measured"]["img_size"] == 224 and doc["trained"]["img_size"] == 64
        assert doc["trained"]["in_chans"] == 1 and doc["trained"]["num_classes"] == 10
        assert "# measured:" in copied[-1] and "# trained:" in copied[-1]
        await pilot.press("escape", "up", "enter")  # trial 2: the paper's M5, over budget, not trained
        await pilot.pause()
        text = str(app.screen.query_one("#detail-text").render())
        assert app.screen.rec.number == 2 and "paper model M5" in text and "not trained" in text


def test_trained_config_when_the_engine_did_not_store_it(url):
    rec = D.load_view("fixture", url).record(4)
    train = {k: v for k, v in rec.train.items() if k != "trained_config"}
    derived, how = trained_config(st.TrialRecord(**{**rec.to_dict(), "train": {**train, "img_size": 32, "in_chans": 1}}))
    assert derived["img_size"] == 32 and derived["in_chans"] == 1 and derived["num_classes"] == 1000 and "derived" in how
    unknown, how = trained_config(st.TrialRecord(**{**rec.to_dict(), "train": train}))
    assert unknown is None and "not recorded" in how
    assert trained_config(st.TrialRecord(**{**rec.to_dict(), "train": None})) == (None, "not trained")
    assert "trained: null" in config_yaml(st.TrialRecord(**{**rec.to_dict(), "train": None}))


async def test_compare_two_candidates_and_the_same_one(url):
    app = EvitTui("fixture", url, refresh_s=60)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("m", "c")  # the same trial: says so, instead of "mark a trial first"
        await pilot.pause()
        assert not isinstance(app.screen, CompareScreen)
        assert any("#0 is marked" in n.message for n in app._notifications)
        await pilot.press("down", "down", "c")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
        await pilot.pause()
        # what the screen shows: A is the marked #0 (M1), B the current #2 (M5), their numbers and B - A
        shown = app.screen.query_one("#compare")
        assert [str(c.label) for c in shown.columns.values()] == ["field", "A #0", "B #2", "B - A"]
        rows = {str(r[0]): [str(c) for c in r[1:]] for r in (shown.get_row_at(i) for i in range(shown.row_count))}
        a, b = app.view.record(0), app.view.record(2)
        assert rows["throughput ratio"][:2] == [f"{a.ratio:.3f}", f"{b.ratio:.3f}"]
        assert rows["throughput ratio"][2].startswith(f"{b.ratio - a.ratio:.3f}")
        assert rows["proxy top-1 %"][:2] == [f"{a.accuracy:.2f}", "-"]  # M5 was not trained
        assert rows["stages[0].dim"][:2] == ["128", "192"]  # where the measured configs differ


async def test_live_refresh_shows_new_trials(url):
    app = EvitTui("fixture", url, refresh_s=0.3)
    async with app.run_test(size=SIZE) as pilot:
        table = await _settle(pilot)
        assert len(app.view.records) == 24
        add_trial(st.load_study("fixture", url), 24, status="ok")  # a run writes a trial meanwhile
        for _ in range(20):
            await pilot.pause(0.2)
            if len(app.view.records) == 25:
                break
        assert len(app.view.records) == 25 and any(r.number == 24 for r in table.shown)


def _table_rows(table) -> list[int]:
    return [int(row.key.value) for row in table.ordered_rows]


async def _until_filled(pilot, table) -> None:
    for _ in range(100):
        if table.filled:
            return
        await pilot.pause(0.05)
    raise AssertionError(f"{table.row_count} of {len(table.shown)} rows added")


async def test_a_large_study_fills_in_chunks_and_ends_complete(tmp_path, monkeypatch):
    """Rows beyond the first screenful come a chunk per draw: once complete the table holds every
    shown trial once, in the shown order, also after a sort and a reverse made while it was still
    filling; a selection or ctrl+end beyond the added rows lands on the right trial."""
    url = f"sqlite:///{tmp_path / 'big.db'}"
    make_study(url, "big", 80)
    monkeypatch.setattr(TrialsTable, "FIRST_ROWS", 5)  # a screenful (24 rows) comes first, then 7 a draw
    monkeypatch.setattr(TrialsTable, "CHUNK_ROWS", 7)
    app = EvitTui("big", url, refresh_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await _settle(pilot)
        await _until_filled(pilot, table)
        assert _table_rows(table) == [r.number for r in table.shown] == list(range(80))
        low = D.sort_records(app.view.records, "accuracy")[0].number
        table.select(low)
        table.action_sort_column(1)  # top-1 %: the cursor's trial comes first, the rows after a screenful wait
        assert table.current == low and table.row_count == 24 and not table.filled
        await pilot.press("ctrl+end")  # the last trial, not the last row added so far
        assert table.current == table.shown[-1].number and table.cursor_row == 79
        table.select(0)
        table.action_sort_column(-1)  # back to #, trial 0 on top: a screenful again
        assert table.current == 0 and table.row_count == 24 and not table.filled
        table.select(79)  # beyond the rows added so far
        assert table.current == 79 and table.cursor_row == 79
        table.action_reverse()  # and reversed while the rest of the rows are still to come
        assert table.current == 79 and table.cursor_row == 0 and not table.filled
        await _until_filled(pilot, table)
        assert table.state == D.TableState(sort_key="number", reverse=True)
        assert [r.number for r in table.shown] == list(range(79, -1, -1))
        assert _table_rows(table) == [r.number for r in table.shown] and len(set(_table_rows(table))) == 80


def _data_range_pick(info, drawing, hit):
    """What mapping a click with the points' data range (the old bug) would select."""
    cols = [h[0] for h in drawing.hits]
    rows = [h[1] for h in drawing.hits]
    fx = (hit[0] - min(cols)) / ((max(cols) - min(cols)) or 1)
    fy = (hit[1] - min(rows)) / ((max(rows) - min(rows)) or 1)
    pts = [p for p in info.points if p.y is not None]
    xs, ys = [p.x for p in pts], [p.y for p in pts]
    x, y = min(xs) + fx * (max(xs) - min(xs)), max(ys) - fy * (max(ys) - min(ys))
    return min(pts, key=lambda p: ((p.x - x) / (max(xs) - min(xs))) ** 2 + ((p.y - y) / (max(ys) - min(ys))) ** 2).number


@pytest.mark.parametrize("size", [(80, 24), SIZE])
async def test_plot_click_selects_the_point_under_it(url, size):
    app = EvitTui("fixture", url, refresh_s=60)
    async with app.run_test(size=size) as pilot:
        table = await _settle(pilot)
        plot = app.main.plot
        info = app.view.pareto(plot.axes)
        ys = [p.y for p in info.points if p.y is not None]
        assert info.ylim[1] > max(ys) and info.xlim[0] < min(p.x for p in info.points)  # axis range != data range
        targets = [h for h in plot.drawing.hits if h[3] in {p.number for p in info.front} | {0, 1, 2, 5, 21}]
        assert {h[3] for h in targets} >= {p.number for p in info.front} | {0, 1, 2}  # front, M1, M2, M5 on the strip
        differs = 0
        for col, row, _, number in targets:
            if plot.drawing.nearest(col, row) != number:
                continue  # two trials in one cell: the one drawn on top wins
            await pilot.click("#plot", offset=(col + plot.styles.padding.left, row))
            await pilot.pause()
            assert table.current == number and plot.selected == number
            differs += _data_range_pick(info, plot.drawing, (col, row)) != number
        assert differs, "no click here would have told the axis range from the data range"


async def test_plot_click_on_a_filtered_out_trial_clears_the_filter(url):
    app = EvitTui("fixture", url, refresh_s=60)
    async with app.run_test(size=SIZE) as pilot:
        table = await _settle(pilot)
        await pilot.press("p")  # the front only; M1 (trial 0) is not on it
        col, row, _, _ = next(h for h in app.main.plot.drawing.hits if h[3] == 0)
        await pilot.click("#plot", offset=(col + 1, row))
        await pilot.pause()
        assert table.current == 0 and table.state.mode == "all"


async def test_plot_axes_cycle_through_objectives(url):
    app = EvitTui("fixture", url, refresh_s=60)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        plot = app.main.plot
        seen = [plot.axes]
        for _ in range(len(AXES)):
            await pilot.press("o")
            await pilot.pause()
            seen.append(plot.axes)
            assert {h[3] for h in plot.drawing.hits} >= app.view.front  # the front is drawn on every pair
        assert seen[0] == seen[-1] and len(set(seen)) == len(seen) - 1


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
async def test_layout_shares_the_width_and_every_key_is_reachable(url, size):
    app = EvitTui("fixture", url, refresh_s=60)
    async with app.run_test(size=size) as pilot:
        await _settle(pilot)
        left, plot = app.main.query_one("#left").region, app.main.plot.region
        assert left.width >= 36 and plot.width >= 36 and left.right <= plot.x
        assert app.main.query_one("#filter-line").region.height >= 1  # state has a line of its own
        summary = app.main.query_one("#summary")  # the study at a glance is not cut
        assert summary.get_content_height(app.size, app.size, summary.content_size.width) <= summary.content_size.height
        footer = app.main.query_one("Footer")
        want = {"question_mark", "q", "slash", "m", "c", "e", "o", "s"}
        for _ in range(100):  # the footer recomposes when the bindings change (slowly on a loaded machine)
            shown = {k.key for k in footer.query("FooterKey") if k.region.width and k.region.right <= size[0]}
            if shown >= want:
                break
            await pilot.pause(0.1)
        assert shown >= want
        bindings = [b for node in (app.main, app.main.table) for b in node.BINDINGS]
        for b in bindings:  # ? lists every key, shown in the footer or not
            for key in b.key.split(","):
                shown_as = {"question_mark": "?", "slash": "/", "escape": "esc", "less_than_sign": "<", "greater_than_sign": ">"}.get(key, key)
                assert shown_as in HELP, key


async def test_ablation_view(tmp_path):
    u = f"sqlite:///{tmp_path / 'a.db'}"
    make_ablation_study(u)
    app = EvitTui("table6-fixture", u, refresh_s=60)
    async with app.run_test(size=SIZE) as pilot:
        table = await _settle(pilot)
        # every backend gets its own columns in the trials table
        assert "torch-cpu img/s" in _labels(table) and "torch-cpu ratio" in _labels(table)
        await pilot.press("t")
        await pilot.pause()
        assert app.screen.query_one("#ablation").row_count == 11


async def test_study_picker_opens_the_picked_study(url):
    app = EvitTui(None, url, refresh_s=60, studies=st.list_studies(url))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        table = await _settle(pilot)
        assert app.study_name == "fixture" and len(table.shown) == 24



@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the forked first read is Linux-only")
def test_first_read_in_a_forked_process_is_the_direct_read(url):
    # in a fresh interpreter: threads left by other tests in this one rule the fork out
    code = ("import sys\nfrom evit_search.tui import first_read, view as D\n"
            "forked = first_read.start('fixture', sys.argv[1])\nassert forked is not None, 'one thread: it forks'\n"
            "view, direct = forked.result(), D.load_view('fixture', sys.argv[1])\n"
            "assert (view.name, view.kind, view.attrs, view.front) == (direct.name, direct.kind, direct.attrs, direct.front)\n"
            "assert view.records == direct.records and len(view.records) == 24\nprint('SAME')\n")
    out = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "SAME" in out.stdout, out.stderr[-2000:]


def test_first_read_errors_come_back_and_other_threads_rule_fork_out(url):
    forked = first_read.start("nope", url)
    if forked is not None:
        with pytest.raises(StorageError, match="no study named 'nope'"):
            forked.result()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert first_read.start("fixture", url) is None  # forking a threaded process is not safe
    finally:
        stop.set()
        other.join()

@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the forked first read is Linux-only")
def test_open_app_starts_the_read_at_once_and_reaps_it_when_the_study_is_missing(url, monkeypatch):
    started = []
    start = first_read.start
    monkeypatch.setattr(first_read, "start", lambda *a: started.append(start(*a)) or started[-1])
    if threading.active_count() != 1:
        pytest.skip("another test left a thread in this process: the fork is ruled out (tested alone)")
    app = open_app("fixture", url)
    assert started[0] is not None and app._first_read is started[0]  # the app waits on the read begun before the check
    assert len(app._first_read.result().records) == 24
    with pytest.raises(StorageError, match="no study named 'nope'"):
        open_app("nope", url)
    with pytest.raises(ChildProcessError):  # the reader was ended and reaped: no zombie, no process left
        os.waitpid(started[1].pid, os.WNOHANG)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the forked first read is Linux-only")
def test_a_reader_dropped_unread_is_reaped(tmp_path):
    # in a fresh interpreter (one thread: it forks); an App built and never run drops its reader so
    code = ("import gc, os, sys\nfrom evit_search.tui import first_read\n"
            "forked = first_read.start('fixture', sys.argv[1])\nassert forked is not None\npid = forked.pid\n"
            "del forked\ngc.collect()\n"
            "try:\n    os.waitpid(pid, os.WNOHANG)\nexcept ChildProcessError:\n    print('REAPED')\n")
    out = subprocess.run([sys.executable, "-c", code, f"sqlite:///{tmp_path / 'none.db'}"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "REAPED" in out.stdout, (out.stdout, out.stderr[-2000:])


def test_unknown_study_and_storage_are_one_line(tmp_path, url):
    for args, msg in [(["tui", "nope", "--storage", url], "no study named 'nope'"),
                      (["tui", "--storage", str(tmp_path / "missing.db")], "no study database")]:
        out = subprocess.run([sys.executable, "-m", "evit_search", *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and msg in out.stderr and "Traceback" not in out.stderr


def test_tui_does_not_import_torch():
    code = ("import sys, evit_search.tui.app, evit_search.tui.view, evit_search.storage; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_main_screen_snapshot(url, snap_compare):
    assert snap_compare(EvitTui("fixture", url, refresh_s=60), terminal_size=(80, 24), run_before=_settle)


def test_large_screen_snapshot(url, snap_compare):
    assert snap_compare(EvitTui("fixture", url, refresh_s=60), terminal_size=SIZE, run_before=_settle)


def test_detail_screen_snapshot(url, snap_compare):
    async def open_detail(pilot):
        await _settle(pilot)
        await pilot.press("down", "down", "down", "enter")
        for _ in range(50):  # wait for the state, not for a fixed time: machines under load are slow
            if isinstance(pilot.app.screen, DetailScreen):
                break
            await pilot.pause(0.1)
        await pilot.pause(0.5)

    assert snap_compare(EvitTui("fixture", url, refresh_s=60), terminal_size=SIZE, run_before=open_detail)


async def _settle(pilot) -> TrialsTable:
    for _ in range(100):  # until the study is loaded and shown
        if pilot.app.view is not None and pilot.app.main.table.shown:
            break
        await pilot.pause(0.1)
    await pilot.pause(0.5)
    return pilot.app.main.table
