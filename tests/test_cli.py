"""The command line edge: help, version, one-line errors with non-zero exits."""

import subprocess
import sys

import pytest

from evit_search import __version__
from evit_search.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "evit_search", *args], capture_output=True, text=True, timeout=300)


def test_version_and_help():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"evit-search {__version__}"
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("run", "ablate", "tui", "bench", "train", "proxy-check", "show", "report", "export"):
        assert cmd in out.stdout


@pytest.mark.parametrize("cmd", ["run", "ablate", "tui", "bench", "train", "proxy-check", "show", "report", "export", "data"])
def test_every_command_has_help(cmd):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0


@pytest.mark.parametrize("cmd,flag", [("run", "--measure-rounds"), ("bench", "--rounds"), ("ablate", "--rounds")])
def test_help_says_six_rounds_are_the_fewest_for_95_percent(cmd, flag, capsys):
    """Fewer rounds cannot give a 95 % interval of the median (5: 93.75 %): the default is 6 and
    --help says why (issue 12.3)."""
    with pytest.raises(SystemExit):
        main([cmd, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width
    line = text.split(f"{flag} {flag.lstrip('-').replace('-', '_').upper()} ")[-1].split(" --")[0]
    assert "default 6" in line and "95 %" in line and "real coverage" in line, line


def test_train_errors_are_one_line(tmp_path):
    out = run("train", "efficientvit_m9")
    assert out.returncode == 2 and "neither a model name" in out.stderr and "Traceback" not in out.stderr
    out = run("train", "efficientvit_m0", "--protocol", "long")
    assert out.returncode == 2 and "--protocol='long' is not one of" in out.stderr
    bad = tmp_path / "c.yaml"
    bad.write_text("stages: [{dim: 60, depth: 1, num_heads: 4}]\n")
    out = run("train", str(bad), "--data", "synthetic")
    assert out.returncode == 2 and "stages[0].dim=60 must be divisible by 8" in out.stderr
    out = run("train", "efficientvit_m0", "--data", "synthetic", "--device", "npu")
    assert out.returncode == 2 and out.stderr.strip().endswith("--device='npu' is not one of auto, cpu, cuda, cuda:N")


def test_train_end_to_end_saves_a_loadable_checkpoint(tmp_path):
    out = run("train", "efficientvit_m0", "--data", "synthetic", "--protocol", "proxy-fast", "--train-threads", "1",
              "--out", str(tmp_path / "m0.pt"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "top-1" in out.stdout
    import efficientvit

    m = efficientvit.load_model(tmp_path / "m0.pt")
    assert m.config.in_chans == 1 and m.config.num_classes == 4 and m.config.img_size == 32


def test_debug_shows_traceback():
    out = run("--debug", "train", "efficientvit_m9")
    assert out.returncode != 0 and "Traceback" in out.stderr


@pytest.mark.parametrize("args,flag", [
    (["run", "--budget", "1.25x", "--trials", "1", "--epochs", "0"], "--epochs"),
    (["run", "--trials", "0"], "--trials"),
    (["run", "--trials", "1", "--jobs", "0"], "--jobs"),
    (["run", "--trials", "1", "--timeout", "-5"], "--timeout"),
    (["run", "--trials", "1", "--measure-rounds", "0"], "--measure-rounds"),
    (["run", "--trials", "1", "--per-class", "0"], "--per-class"),
    (["train", "efficientvit_m0", "--train-threads", "0"], "--train-threads"),
    (["bench", "table2", "--seconds", "0"], "--seconds"),
    (["ablate", "table6", "--img-size", "0"], "--img-size"),
    (["proxy-check", "--classes", "-1"], "--classes"),
])
def test_non_positive_counts_are_one_line_and_store_nothing(tmp_path, args, flag):
    db = tmp_path / "s.db"
    out = subprocess.run([sys.executable, "-m", "evit_search", *args, "--storage", str(db)] if args[0] in ("run", "ablate")
                         else [sys.executable, "-m", "evit_search", *args], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and flag in lines[0], out.stderr
    assert "Traceback" not in out.stderr and not db.exists() and not (tmp_path / "runs").exists()


def test_data_loading_of_the_commands_holds_the_host_lock_shared(monkeypatch, capsys):
    """train and proxy-check (training_inputs) and `data info` read, decode and resize data
    under the shared host lock, so a measurement never times beside it."""
    import argparse

    from evit_search import hostlock
    from evit_search.cli.model_cmd import run_data
    from evit_search.cli.options import training_inputs
    from evit_search.training import data

    events = []
    monkeypatch.setattr(hostlock, "recorder", lambda event, label, _t: events.append((event, label)))
    real = data.load_dataset
    monkeypatch.setattr(data, "load_dataset", lambda *a, **kw: events.append(("load", "")) or real(*a, **kw))
    args = argparse.Namespace(device="cpu", amp=False, protocol="proxy-fast", epochs=None, data="synthetic",
                              data_dir=None, classes=None, per_class=None)
    *_, bundle = training_inputs(args)
    assert bundle.num_classes == 4 and events == [("shared-acquired", "loading and resizing data"), ("load", ""),
                                      ("shared-released", "loading and resizing data")]
    events.clear()
    assert run_data(argparse.Namespace(action="info", dataset="synthetic", data_dir=None)) == 0
    assert events == [("shared-acquired", "loading data"), ("load", ""), ("shared-released", "loading data")]
