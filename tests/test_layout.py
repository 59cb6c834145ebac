"""The layout a newcomer relies on: names that resolve, no import circles, short modules, small folders."""

import ast
import importlib
import re
from pathlib import Path

import pytest

import huenet

ROOT = Path(huenet.__file__).parent.parent
PACKAGE = ROOT / "huenet"
KERNELS = ROOT / "kernels"
# A dotted name that starts at huenet (not torch.ops.huenet.*, not a path or URL).
DOTTED = re.compile(r"(?<![\w./-])huenet(?:\.[A-Za-z_]\w*)+")
MAX_LINES = 450
MAX_MODULES_PER_FOLDER = 14


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py")) + sorted(KERNELS.rglob("*.py"))


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def _documents() -> list[Path]:
    tests = [p for p in sorted((ROOT / "tests").glob("*.py")) if p.name != "test_layout.py"]
    tests += sorted((ROOT / "bench").glob("*.py"))
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *_sources(), *tests]


def test_every_dotted_huenet_name_resolves():
    unresolved = set()
    for path in _documents():
        for match in DOTTED.finditer(path.read_text(encoding="utf-8")):
            name = match.group(0)
            if not _resolves(name):
                unresolved.add(f"{path.relative_to(ROOT)}: {name}")
    assert not unresolved, "\n".join(sorted(unresolved))


def test_the_name_check_can_fail():
    assert _resolves("huenet.colortransfer.methods.registry.METHODS")
    assert not _resolves("huenet.colortransfer.metrics.no_such_metric")
    assert not _resolves("huenet.synthetic")  # the application's modules moved into huenet.colortransfer


def _module_name(path: Path) -> str:
    if path.is_relative_to(KERNELS):
        rel = ("huenet", "kernels", *path.relative_to(KERNELS).with_suffix("").parts)
    else:
        rel = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def _imports(path: Path, name: str) -> set[str]:
    """The huenet modules ``path`` imports (at any depth in the file, lazily or not)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("huenet")}


def test_no_import_circles():
    modules = {_module_name(p): p for p in _sources()}
    graph = {name: {m for m in _imports(path, name) if m in modules and m != name} for name, path in modules.items()}
    # A module importing its own package's __init__ is Python's doing, not a circle of ours: ignore parents.
    graph = {n: {m for m in deps if not n.startswith(m + ".")} for n, deps in graph.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_too_long(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)}: {lines} lines"


def test_no_folder_holds_too_many_modules():
    for folder in {p.parent for p in _sources()}:
        count = len(list(folder.glob("*.py")))
        assert count <= MAX_MODULES_PER_FOLDER, f"{folder.relative_to(ROOT)}: {count} modules"


def test_the_application_uses_only_public_library_names():
    app = PACKAGE / "colortransfer"
    for path in sorted(app.rglob("*.py")):
        name = _module_name(path)
        for module in _imports(path, name):
            if module.startswith("huenet.colortransfer"):
                continue
            parts = module.split(".")
            assert not any(p.startswith("_") for p in parts), f"{name} imports {module}"
            assert "backends" not in parts and "binning" not in parts, f"{name} reaches into {module}"


# A convention, not a setting with a chosen value: where a function loads or scores when it is not told otherwise
# (torch's own default device).
_NOT_SETTINGS = {("device", "cpu")}


def _literal_defaults(path: Path) -> list[tuple[str, object, str]]:
    """(name, value, where) of every literal default in ``path``: function parameters and class fields.

    None, booleans and zero are left out: they say "absent", "off" or "none" (no dropout, no L1 term, no
    refinement steps, the first seed), not a value chosen for the setting.
    """
    found = []

    def add(name, node, where):
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool) and node.value not in (None, 0):
            found.append((name, node.value, where))

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.FunctionDef):
            positional = node.args.posonlyargs + node.args.args
            for arg, default in zip(positional[len(positional) - len(node.args.defaults) :], node.args.defaults):
                add(arg.arg, default, where)
            for arg, default in zip(node.args.kwonlyargs, node.args.kw_defaults):
                add(arg.arg, default, where)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    add(item.target.id, item.value, where)
    return found


def test_each_default_is_written_once():
    places: dict[tuple[str, object], list[str]] = {}
    for path in _sources():
        for name, value, where in _literal_defaults(path):
            places.setdefault((name, value), []).append(where)
    repeated = {k: v for k, v in places.items() if len(v) > 1 and k not in _NOT_SETTINGS}
    assert not repeated, "\n".join(f"{name}={value!r}: {', '.join(v)}" for (name, value), v in repeated.items())


def test_the_defaults_check_can_fail(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "def f(x, bins=256, on=True, w=None, k=0, *, mode='a'):\n    pass\n\n\nclass C:\n    bins: int = 256\n"
    )
    assert [(name, value) for name, value, _ in _literal_defaults(module)] == [
        ("bins", 256),
        ("mode", "a"),
        ("bins", 256),
    ]
