"""The TUI: Pilot tests for behaviour, SVG snapshots for looks, on generated fixture studies."""

import subprocess
import sys

import pytest

from evit_search import storage as st
from evit_search.tui import view as D
from evit_search.tui.app import EvitTui
from evit_search.tui.demo import add_trial, make_ablation_study, make_study
from evit_search.tui.screens import CompareScreen, DetailScreen

SIZE = (120, 36)


@pytest.fixture
def url(tmp_path):
    u = f"sqlite:///{tmp_path / 'tui.db'}"
    make_study(u)
    return u


def test_data_layer_filters_and_sorts(url):
    view = D.load_view("fixture", url)
    assert len(D.filtered(view, "all")) == 24
    feas = D.filtered(view, "feasible")
    assert feas and all(r.feasible for r in feas)
    assert {r.number for r in D.filtered(view, "front")} == view.front
    assert all(r.status == "failed" for r in D.filtered(view, "failed"))
    assert [r.number for r in D.filtered(view, "all", "H=4/")] == [r.number for r in view.records if r.config["stages"][0]["num_heads"] == 4]
    acc = D.sort_records(view.records, "accuracy", reverse=True)
    present = [r.accuracy for r in acc if r.accuracy is not None]
    assert present == sorted(present, reverse=True) and acc[-1].accuracy is None  # missing last


async def test_sorting_by_header_and_key(url):
    app = EvitTui("fixture", url, refresh_s=60)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        assert len(app.shown) == 24
        app._header(type("E", (), {"column_key": type("K", (), {"value": "accuracy"})()})())
        await pilot.pause()
        accs = [r.accuracy for r in app.shown if r.accuracy is not None]
        assert accs == sorted(accs)
        await pilot.press("s")  # by the column under the cursor (the first: #), ascending
        await pilot.pause()
        assert [r.number for r in app.shown] == sorted(r.number for r in app.shown)
        await pilot.press("s")  # again: descending
        await pilot.pause()
        assert [r.number for r in app.shown] == sorted((r.number for r in app.shown), reverse=True)


async def test_filters_and_text_query(url):
    app = EvitTui("fixture", url, refresh_s=60)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("f")
        assert app.shown and all(r.feasible for r in app.shown)
        await pilot.press("p")
        assert {r.number for r in app.shown} == app.view.front
        await pilot.press("x")
        assert app.shown and all(r.status == "failed" for r in app.shown)
        await pilot.press("a", "slash")
        await pilot.press(*"C=96/")
        await pilot.pause()
        assert app.shown and all(r.config["stages"][0]["dim"] == 96 for r in app.shown)


async def test_open_candidate_detail(url):
    app = EvitTui("fixture", url, refresh_s=60)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen) and app.screen.rec.number == 1
        text = str(app.screen.query_one("#detail-text").render())
        assert "Trial #1" in text and "torch-cpu" in text and "Fixture CPU" in text and "stage" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)


async def test_compare_two_candidates(url):
    app = EvitTui("fixture", url, refresh_s=60)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("m", "down", "down", "c")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
        assert (app.screen.a.number, app.screen.b.number) == (0, 2)
        rows = D.compare_rows(app.screen.a, app.screen.b)
        assert any(r[0] == "stages[0].dim" for r in rows) and any(r[0] == "throughput ratio" for r in rows)


async def test_live_refresh_shows_new_trials(url):
    app = EvitTui("fixture", url, refresh_s=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        assert len(app.view.records) == 24
        add_trial(st.load_study("fixture", url), 24, status="ok")  # a run writes a trial meanwhile
        for _ in range(20):
            await pilot.pause(0.2)
            if len(app.view.records) == 25:
                break
        assert len(app.view.records) == 25 and any(r.number == 24 for r in app.shown)


async def test_plot_click_selects_a_trial(url):
    app = EvitTui("fixture", url, refresh_s=60)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        before = app.current_number()
        await pilot.click("#plot", offset=(10, 5))
        await pilot.pause()
        assert app.current_number() is not None and app._plot_points
        assert before is not None


async def test_plot_axes_cycle_through_objectives(url):
    app = EvitTui("fixture", url, refresh_s=60)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        seen = [app.axes]
        for _ in range(len(D.AXES)):
            await pilot.press("o")
            seen.append(app.axes)
        assert seen[:len(D.AXES)] == D.AXES and seen[-1] == D.AXES[0]
        assert app._plot_points  # something is drawn on every pair


async def test_ablation_view(tmp_path):
    u = f"sqlite:///{tmp_path / 'a.db'}"
    make_ablation_study(u)
    app = EvitTui("table6-fixture", u, refresh_s=60)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        # every backend gets its own columns in the trials table
        headers = [str(c.label) for c in app.main.query_one("#trials").columns.values()]
        assert "torch-cpu img/s" in headers and "torch-cpu ratio" in headers
        await pilot.press("t")
        await pilot.pause()
        table = app.screen.query_one("#ablation")
        assert table.row_count == 11


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
        await pilot.press("down", "down", "enter")
        for _ in range(50):  # wait for the state, not for a fixed time: machines under load are slow
            if isinstance(pilot.app.screen, DetailScreen):
                break
            await pilot.pause(0.1)
        await _settle(pilot)

    assert snap_compare(EvitTui("fixture", url, refresh_s=60), terminal_size=SIZE, run_before=open_detail)


async def _settle(pilot):
    for _ in range(100):  # until the study is loaded and shown
        if pilot.app.view is not None and pilot.app.shown:
            break
        await pilot.pause(0.1)
    await pilot.pause(0.5)
