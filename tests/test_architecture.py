"""The package's shape, checked from the source: imports run one way (pipeline -> augment -> deploy ->
trainers), no module imports itself back through others (no circles, lazy imports included), and no code
imports a folder by its bare name (`import trainers`): installed, the only top-level name is `ganstream`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = {"trainers": 0, "deploy": 1, "augment": 2, "pipeline": 3}
FOLDERS = {"ganstream": REPO / "ganstream", **{name: REPO / name for name in LAYERS}}
BARE = tuple(LAYERS)


def module_name(path: Path) -> str:
    for top, folder in FOLDERS.items():
        if folder in path.parents:
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            return ".".join(["ganstream", *([] if top == "ganstream" else [top]), *parts])
    raise ValueError(path)


def package_files() -> list[Path]:
    return sorted(f for folder in FOLDERS.values() for f in folder.rglob("*.py"))


def imports(path: Path) -> set[str]:
    """Every module `path` imports: module-level and lazy (inside functions) imports, relative ones resolved,
    and importlib.import_module("...") calls with a literal name."""
    tree = ast.parse(path.read_text(), str(path))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            found.add(node.args[0].value)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(f): f for f in package_files()}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for imported in imports(path):
            while imported and imported not in modules:  # `from pkg.mod import name`: keep the module
                imported = imported.rpartition(".")[0]
            if imported and imported != name and imported in modules and modules[imported].name != "__init__.py":
                targets.add(imported)
        edges[name] = targets
    return edges


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_imports_only_point_down_the_layers():
    upward = [f"{a} -> {b}" for a, targets in graph().items() for b in targets
              if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)]
    assert upward == [], "upward imports (pipeline -> augment -> deploy -> trainers):\n" + "\n".join(upward)


def test_no_import_circles():
    edges = graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert cycles == [], f"import circles: {cycles}"


BARE_IMPORT = re.compile(rf"^\s*(?:import|from)\s+({'|'.join(BARE)})(?:\.|\s|$)", re.M)
BARE_STRING = re.compile(rf"""["'](?:-m\s+)?({'|'.join(BARE)})\.[a-z_]""")


def all_python_files() -> list[Path]:
    roots = [*FOLDERS.values(), REPO / "tests", REPO / "benchmarks", REPO / "examples"]
    return sorted(f for root in roots for f in root.rglob("*.py") if ".venv" not in f.parts)


@pytest.mark.parametrize("path", all_python_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_bare_folder_imports(path):
    """`import trainers` (or augment, deploy, pipeline) works only from a checkout's root and shadows or is
    shadowed by other packages of those names; installed, they are ganstream.trainers and so on."""
    text = path.read_text()
    bad = [m.group(0).strip() for m in BARE_IMPORT.finditer(text)]
    bad += [m.group(0) for m in BARE_STRING.finditer(text) if path.name != "test_architecture.py"]
    assert bad == [], f"{path.relative_to(REPO)}: bare imports {bad}"


def test_the_checker_sees_upward_imports_and_circles(tmp_path, monkeypatch):
    """The checks above can fail: a deploy module importing augment is upward; two modules importing each
    other form a circle."""
    fake = {name: tmp_path / name for name in LAYERS}
    for folder in fake.values():
        folder.mkdir()
        (folder / "__init__.py").write_text("")
    (fake["deploy"] / "up.py").write_text("from ganstream.augment.side import x\n")
    (fake["augment"] / "side.py").write_text("def f():\n    from ganstream.augment import other\n")
    (fake["augment"] / "other.py").write_text("import ganstream.augment.side\n")
    monkeypatch.setitem(FOLDERS, "ganstream", tmp_path / "none")
    for name, folder in fake.items():
        monkeypatch.setitem(FOLDERS, name, folder)
    with pytest.raises(AssertionError, match="ganstream.deploy.up -> ganstream.augment.side"):
        test_imports_only_point_down_the_layers()
    with pytest.raises(AssertionError, match="ganstream.augment.other.*ganstream.augment.side"):
        test_no_import_circles()
