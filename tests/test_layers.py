"""Layering: roles never import each other, `cluster` imports no role, only the bridge imports kazoo."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROLES = {"coordinator", "transcoder", "edge"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ROLES | {"cluster"}))
def test_package_imports_stay_in_their_layer(package: str) -> None:
    forbidden = ROLES - {package}
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _files(package)
        for name in _imports(path)
        if name.split(".")[0] in forbidden
    ]
    assert offenders == []


def test_only_the_bridge_imports_kazoo() -> None:
    allowed = {ROOT / "cluster" / "zk" / "bridge.py"}
    offenders = [
        str(path.relative_to(ROOT))
        for package in sorted(ROLES | {"cluster", "zoocast"})
        for path in _files(package)
        if path not in allowed and any(n.split(".")[0] == "kazoo" for n in _imports(path))
    ]
    assert offenders == []
