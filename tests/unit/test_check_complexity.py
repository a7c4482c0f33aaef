"""scripts/check-complexity (make lint): a function above cyclomatic complexity 15 (radon) fails it, by name."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT


def _check() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("check_complexity", str(ROOT / "scripts" / "check-complexity"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _branches(name: str, count: int, indent: str = "") -> str:
    """A function of cyclomatic complexity ``count`` + 1: ``count`` ifs."""
    body = "".join(f"{indent}    if x == {i}:\n{indent}        return {i}\n" for i in range(count))
    return f"{indent}def {name}(x):\n{body}{indent}    return -1\n"


def test_a_function_above_15_fails_and_is_named_one_at_15_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check = _check()
    (tmp_path / "fine.py").write_text(_branches("at_the_limit", 14))
    assert check.main([str(tmp_path)]) == 0
    (tmp_path / "nested.py").write_text(f"class Shape:\n{_branches('method', 15, '    ')}")
    (tmp_path / "closure.py").write_text(f"def outer():\n{_branches('inner', 15, '    ')}    return inner\n")
    assert check.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "nested.py:2 Shape.method (16)" in out and "closure.py:2 outer.inner (16)" in out
    assert "at_the_limit" not in out
