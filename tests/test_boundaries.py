"""Architecture and security rules that hold for the whole code base (DESIGN.md, STYLE.md)."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("landmark_drivers", "mofa_engine", "portrait_studio")
# who may import whom: the two libraries never import each other, the app, or the UI
FORBIDDEN = {
    "landmark_drivers": {"mofa_engine", "portrait_studio", "streamlit"},
    "mofa_engine": {"landmark_drivers", "portrait_studio", "streamlit"},
    "portrait_studio": {"streamlit"},
}


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
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in sources(package)
           for mod, line in imported_roots(p) if mod in FORBIDDEN[package]]
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
