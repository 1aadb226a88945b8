"""Structural rules: only the backend imports CuPy; layers import downward only."""
import ast
from pathlib import Path

import minigan

PKG = Path(minigan.__file__).parent


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            yield ("." * node.level) + (node.module or "")


def test_only_the_backend_imports_cupy():
    offenders = []
    for path in PKG.rglob("*.py"):
        for name in _imports(path):
            if name == "cupy" or name.startswith(("cupy.", "cupyx")):
                offenders.append(str(path.relative_to(PKG)))
    assert offenders == ["backend.py"], offenders


def test_the_scan_would_see_a_cupy_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from cupyx import scatter_add\n    import cupy as cp\n")
    assert {"cupyx", "cupy"} <= set(_imports(bad))


def test_kernels_know_nothing_of_tensors():
    for path in (PKG / "kernels").rglob("*.py"):
        for name in _imports(path):
            assert "autograd" not in name and "functional" not in name and ".nn" not in name, \
                f"{path.name} imports {name}"
