"""The house as the code draws it: dependencies run one way, no import circle, modules a reader
can hold, lazy imports that say why."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "evit_search"
# a layer may import the layers after it, never those before it (efficientvit is below them all)
LAYERS = [("__main__",), ("cli",), ("tui",), ("reproduce",), ("reporting",), ("search",), ("measure", "training", "storage"),
          ("errors", "env", "stats", "hostlock", "hooks", "__init__", "search_spaces")]


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path) -> list[tuple[str, ast.AST]]:
    """Every evit_search/efficientvit module that ``name`` imports, at any depth of the file."""
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        out += [(t, node) for t in targets if t.split(".")[0] in ("evit_search", "efficientvit")]
    return out


def _layer(mod: str) -> int:
    if mod.split(".")[0] == "efficientvit":
        return len(LAYERS)
    top = mod.split(".")[1] if "." in mod else "__init__"
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_every_module_has_a_layer():
    for mod in _modules():
        _layer(mod)


def test_dependencies_run_one_way():
    mods = _modules()
    wrong = []
    for name, path in mods.items():
        for target, node in _imports(name, path):
            if target not in mods and not target.startswith("efficientvit"):
                continue  # a name imported from a module, not a module
            same_top = target.split(".")[:2] == name.split(".")[:2]
            if _layer(target) < _layer(name) or (_layer(target) == _layer(name) and not same_top
                                                   and _layer(name) < len(LAYERS) - 1):
                wrong.append(f"{name}:{node.lineno} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_import_circle():
    mods = _modules()
    graph = {n: {t for t, _ in _imports(n, p) if t in mods and t != n} for n, p in mods.items()}
    for pkg in [n for n, p in mods.items() if p.name == "__init__.py"]:  # a package is read through its children
        graph[pkg] = {t for t in graph[pkg] if not t.startswith(pkg + ".")} | {c for c in mods if c.startswith(pkg + ".")
                                                                               and c in graph[pkg]}
    state: dict[str, int] = {}

    def visit(n, stack):
        state[n] = 1
        for m in graph[n]:
            if m.startswith(n + ".") or n.startswith(m + "."):
                continue  # a package and its own modules
            if state.get(m) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(m):] + [m]))
            if m not in state:
                visit(m, stack + [m])
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n, [n])


def test_efficientvit_never_imports_the_tool():
    for p in (ROOT / "efficientvit").rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        assert not [t for t, _ in _imports(name, p) if t.startswith("evit_search")], p


@pytest.mark.parametrize("path", sorted(p for p in list(PKG.rglob("*.py")) + list((ROOT / "efficientvit").rglob("*.py"))
                                        if p.name != "model.py"), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_a_reader_can_hold(path):
    assert len(path.read_text().splitlines()) <= 450


def test_lazy_imports_say_why():
    """An import inside a function is there for a reason (a heavy library kept off a fast path);
    a comment on one of its lines says which."""
    silent = []
    for path in PKG.rglob("*.py"):
        lines = path.read_text().splitlines()
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            block: list[int] = []
            for node in fn.body + [None]:
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    block += range(node.lineno, node.end_lineno + 1)
                    continue
                if block and not any("#" in lines[i - 1] for i in block):
                    silent.append(f"{path.relative_to(ROOT)}:{block[0]}")
                block = []
    assert not silent, "lazy imports without a reason: " + ", ".join(silent)
