"""No module of the runtime or the operator is over 400 lines (STYLE.md 11:
about 300 a module, split by responsibility past 400)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    modules = [p for tree in ("runtime", "operator") for p in (ROOT / tree).rglob("*.py")]
    assert len(modules) > 50, "the runtime and the operator were not found"
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in modules
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not too_long, f"split these by responsibility: {too_long}"
