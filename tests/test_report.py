"""`slq.report`: a result's summaries as plain numbers and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import slq
from slq import report

SPIKED = np.concatenate([np.linspace(-1.0, 1.0, 997), [10.0, 30.0, 100.0]])


def test_summary_is_plain_json_and_survives_a_save(tmp_path: Path) -> None:
    dos = slq.density(np.diag(SPIKED), num_steps=40, num_probes=4, seed=0)
    summary = report.summary(dos)
    assert report.to_json(dos) == json.dumps(summary) == dos.to_json()
    assert summary == dos.summary()
    assert [round(o["position"], 6) for o in summary["outliers"]] == [10.0, 30.0, 100.0]
    assert summary["wasserstein_bound"]["total"] > 0.0
    assert report.summary(slq.load(dos.save(tmp_path / "dos.npz"))) == summary


def test_summary_without_residuals_leaves_out_what_needs_them() -> None:
    dos = slq.density(np.diag(SPIKED), num_steps=40, num_probes=2, seed=0)
    bare = slq.SpectralDensity(dos.alpha, dos.beta, dim=dos.dim)
    assert "outliers" not in report.summary(bare) and "wasserstein_bound" not in report.summary(
        bare
    )


def test_summary_is_json_ready() -> None:
    dos = slq.density(np.diag(SPIKED), num_steps=40, num_probes=3, seed=0)
    summary = json.loads(json.dumps(dos.summary()))
    assert [o["position"] for o in summary["outliers"]] == pytest.approx([10.0, 30.0, 100.0])
    assert summary["moments"]["1"]["value"] == pytest.approx(SPIKED.mean())
    assert summary["wasserstein_bound"]["total"] > 0
