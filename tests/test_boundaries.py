"""Architecture and security rules that hold for the whole code base (DESIGN.md, STYLE.md)."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("landmark_drivers", "mofa_engine", "portrait_studio")
# who may import whom: the two libraries never import each other, the app, or the UI
UI_LIBRARIES = {"streamlit", "streamlit_drawable_canvas", "streamlit_webrtc"}
FORBIDDEN = {
    "landmark_drivers": {"mofa_engine", "portrait_studio"} | UI_LIBRARIES,
    "mofa_engine": {"landmark_drivers", "portrait_studio"} | UI_LIBRARIES,
    "portrait_studio": UI_LIBRARIES,  # except its `ui` subpackage, the studio page (see UI_FORBIDDEN)
}
UI = ROOT / "portrait_studio" / "ui"
# the studio UI maps widgets to options and calls the app: it never reaches into the libraries
UI_FORBIDDEN = {"landmark_drivers", "mofa_engine"}


def sources(package):
    return sorted((ROOT / package).rglob("*.py"))


def imported_roots(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno


@pytest.mark.parametrize("package", PACKAGES)
def test_import_boundaries(package):
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in sources(package) if UI not in p.parents
           for mod, line in imported_roots(p) if mod in FORBIDDEN[package]]
    assert not bad, bad


def test_the_ui_calls_the_app_only():
    """Only portrait_studio/ui imports streamlit; it and streamlit_app.py go through portrait_studio."""
    files = sorted(UI.rglob("*.py")) + [ROOT / "streamlit_app.py"]
    assert len(files) > 2
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in files
           for mod, line in imported_roots(p) if mod in UI_FORBIDDEN]
    assert not bad, bad
    app = {mod for mod, _ in imported_roots(ROOT / "streamlit_app.py")}
    assert app == {"portrait_studio"}, app


def module_name(path):
    """Dotted name of a source file: `pkg/sub/mod.py` -> `pkg.sub.mod`, `pkg/sub/__init__.py` -> `pkg.sub`."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package):
    """Module -> the modules of `package` it imports, anywhere in the file (top level, functions, `if` blocks).

    `from a.b import c` counts as importing module `a.b.c` when that is a module, else `a.b` itself.
    """
    files = {module_name(p): p for p in sources(package)}
    graph = {}
    for name, path in files.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[:len(here.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                candidates = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                              for alias in node.names]
            else:
                continue
            for target in candidates:
                while target and target not in files:  # `import a.b.c` where only a.b is ours
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def find_cycle(graph):
    """One import cycle as [m1, m2, ..., m1], or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_import_graph_resolves_relative_and_nested_imports():
    graph = import_graph("mofa_engine")
    assert "mofa_engine.warp.raster" in graph["mofa_engine.warp.mouth"]  # from .raster import ...
    assert "mofa_engine.cmp_grid" in graph["mofa_engine.trajectories"]  # from mofa_engine.cmp_grid import
    assert "mofa_engine.models.unet" in graph["mofa_engine.pipeline.loading"]
    assert "landmark_drivers.blendshapes" in import_graph("landmark_drivers")["landmark_drivers.audio.visemes"]
    assert "landmark_drivers.face_analysis" in import_graph("landmark_drivers")["landmark_drivers.video_driver"]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    """No module imports itself through others, not even from inside a function or a TYPE_CHECKING block."""
    cycle = find_cycle(import_graph(package))
    assert cycle is None, " -> ".join(cycle)


# mofa_engine's rooms (DESIGN.md): the shared motion hints at the top, then networks, sampler, CPU renderer
ROOM_MAY_IMPORT = {"hints": {"hints"}, "models": {"models"}, "pipeline": {"hints", "models", "pipeline"},
                   "warp": {"hints", "warp"}}


def room(module):
    """`mofa_engine.warp.mouth` -> "warp"; a module at the top -> "hints"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOM_MAY_IMPORT else "hints"


def test_mofa_engine_rooms_import_downwards_only():
    bad = [f"{mod} imports {target}" for mod, targets in import_graph("mofa_engine").items() if mod != "mofa_engine"
           for target in targets if room(target) not in ROOM_MAY_IMPORT[room(mod)]]
    assert not bad, bad
    assert set(map(room, import_graph("mofa_engine"))) == {"hints", *ROOM_MAY_IMPORT}


def test_app_needs_no_type_checking_imports():
    """Shared types live in modules of their own, so nothing in the app hides an import behind TYPE_CHECKING."""
    bad = [f"{p.relative_to(ROOT)}:{node.lineno}" for p in sources("portrait_studio")
           for node in ast.walk(ast.parse(p.read_text()))
           if (isinstance(node, ast.Name) and node.id == "TYPE_CHECKING")
           or (isinstance(node, ast.Attribute) and node.attr == "TYPE_CHECKING")]
    assert not bad, bad


def all_code():
    files = [p for pkg in PACKAGES for p in sources(pkg)] + sorted((ROOT / "benchmarks").glob("*.py"))
    files += [ROOT / "scripts" / "fetch_face_model.py"]
    return [(p, p.read_text()) for p in files if p.exists()]


def test_no_shell_true():
    assert not [str(p) for p, text in all_code() if re.search(r"shell\s*=\s*True", text)]


def test_torch_load_is_always_weights_only():
    bad = []
    for path, text in all_code():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load" \
                    and getattr(node.func.value, "id", None) == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                if not (isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, bad


def test_nothing_is_unpickled():
    bad = [str(p) for p, text in all_code()
           if re.search(r"pickle\.loads?\(|Unpickler\(|allow_pickle\s*=\s*True", text)]
    assert not bad, bad


def test_libraries_leave_the_device_to_the_caller():
    """No literal "cuda" in the libraries: the caller owns device and dtype (STYLE rule 3)."""
    bad = [f"{p.relative_to(ROOT)}:{i + 1}" for pkg in ("landmark_drivers", "mofa_engine") for p in sources(pkg)
           for i, line in enumerate(p.read_text().splitlines())
           if re.search(r"""["']cuda["']""", line) and not line.lstrip().startswith("#")]
    assert not bad, bad


def test_libraries_do_not_print():
    bad = []
    for pkg in ("landmark_drivers", "mofa_engine"):
        for path in sources(pkg):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, bad
