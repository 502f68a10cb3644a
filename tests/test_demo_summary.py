"""`slq.apps.demo.summary`: a change of negative mass counts only beyond its uncertainty."""

from __future__ import annotations

from slq.apps.demo.summary import change


def _mass(value: float, lower: float, upper: float, stderr: float = 0.0) -> dict[str, float]:
    return {"value": value, "lower": lower, "upper": upper, "stderr": stderr}


def test_changes_count_only_beyond_bracket_and_two_stderr() -> None:
    assert change(_mass(0.3, 0.2, 0.4), _mass(0.05, 0.01, 0.1)) == "falls"
    assert change(_mass(0.05, 0.01, 0.1), _mass(0.3, 0.2, 0.4)) == "rises"
    assert change(_mass(0.3, 0.2, 0.4), _mass(0.1, 0.05, 0.15, 0.03)) == "unresolved"
    assert change(_mass(0.5, 0.1, 0.9), _mass(0.2, 0.1, 0.3)) == "unresolved"
