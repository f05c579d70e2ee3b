"""The built wheel works without the checkout: built-in spaces and the Table 6 rows are package
data, found through importlib.resources."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel, built from this checkout and installed (without its dependencies, which this
    environment has) into a folder of its own."""
    tmp = tmp_path_factory.mktemp("wheel")
    # built from a copy: setuptools reuses a build/ folder in the checkout, whose stale files
    # would hide a package missing from pyproject's list
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "build", "dist", "runs", "*.egg-info", "__pycache__",
                                                             ".pytest_cache", "reports"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp / "dist"), str(src)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp / "dist").glob("evit_search-*.whl"))
    target = tmp / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr[-2000:]
    work = tmp / "elsewhere"  # outside the checkout: nothing can be found relative to it
    work.mkdir()
    return target, work


def _cli(installed, *args):
    target, work = installed
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run([sys.executable, "-m", "evit_search", *args], capture_output=True, text=True, cwd=work,
                          env=env, timeout=900)


def test_the_wheel_is_what_runs(installed):
    target, work = installed
    out = subprocess.run([sys.executable, "-c", "import evit_search; print(evit_search.__file__)"], capture_output=True,
                         text=True, cwd=work, env={**os.environ, "PYTHONPATH": str(target)})
    assert out.stdout.strip().startswith(str(target)), out.stdout + out.stderr


def _packages(root: Path) -> set[str]:
    """Packages under ``root``, as paths relative to it (folders with an ``__init__.py``)."""
    return {f.parent.relative_to(root).as_posix() for f in root.rglob("__init__.py") if "__pycache__" not in f.parts}


def test_the_wheel_holds_every_package_and_module(installed):
    """A subpackage missing from pyproject's list is missing from the wheel (the TUI's screens
    once were): every package of the checkout is there, and every module imports from it."""
    target, work = installed
    # the checkout's top-level search_spaces/ ships as evit_search/search_spaces
    assert _packages(target / "evit_search") == _packages(ROOT / "evit_search") | {"search_spaces"}
    assert _packages(target / "efficientvit") == _packages(ROOT / "efficientvit")
    modules = sorted(".".join(("evit_search", *f.relative_to(target / "evit_search").with_suffix("").parts))
                     for f in (target / "evit_search").rglob("*.py") if f.name != "__main__.py")
    assert "evit_search.tui.screens.main" in modules
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    out = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, cwd=work,
                         env={**os.environ, "PYTHONPATH": str(target)}, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]


def test_run_tiny_space_from_the_wheel(installed):
    out = _cli(installed, "run", "--space", "tiny", "--data", "synthetic", "--protocol", "proxy-fast", "--budget", "0.5x",
               "--measure-seconds", "0.05", "--measure-rounds", "2", "--train-threads", "1", "--sampler", "random",
               "--trials", "1", "--no-train-reference", "--storage", "s.db")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "feasible Pareto front" in out.stdout
    assert "Warning" not in out.stderr, out.stderr  # TorchScript's deprecation notes are not the user's business


def test_ablate_table6_from_the_wheel(installed):
    out = _cli(installed, "ablate", "table6", "--no-train", "--img-size", "32", "--backends", "torch-cpu", "--seconds",
               "0.02", "--warmup", "0.02", "--rounds", "2", "--max-rounds", "2", "--no-suggest-depths",
               "--no-zerocost", "--storage", "a.db", "--reports", "rep")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Table 6" in out.stdout
