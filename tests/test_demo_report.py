"""`slq.apps.demo.report`: the report's sentences follow the numbers."""

from __future__ import annotations

import pytest

from slq.apps.demo.report import outlier_finding

NETWORKS = ("no_bn", "bn")


@pytest.mark.parametrize(
    ("separations", "verdict"), [((40.0, 10.0), "in line with"), ((2.0, 3.0), "unlike")]
)
def test_outlier_finding_follows_the_numbers(
    separations: tuple[float, float], verdict: str
) -> None:
    end = {"lambda_max": 1.0, "outliers": {"count": 2}}
    summary = {
        "networks": {n: {"checkpoints": {"end": end}} for n in NETWORKS},
        "comparison": {
            "lambda_max_ratio": 1.0,
            "separation": dict(zip(NETWORKS, separations, strict=True)),
            "num_outliers": {"no_bn": 2, "bn": 2},
        },
    }
    assert f"{verdict} that finding" in outlier_finding(summary)
