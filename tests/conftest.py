"""Test configuration: one thread per library, hypothesis profiles, the fixture `backend`."""

from __future__ import annotations

import os

from threads import ONE_THREAD

# Before numpy or any framework is imported: they read these once, at import.
for _name, _value in ONE_THREAD.items():
    os.environ.setdefault(_name, _value)
# TensorFlow's C++ logging (oneDNN notices, CPU feature lines) goes to stderr at import.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from helpers import Backend, requested_backends  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Derandomized and bounded, so that CI runs are repeatable and quick.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=20,
    deadline=None,
    # `backend` only names a library; it holds no state between examples.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=requested_backends(), ids=lambda b: b.value)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Every core test runs once per backend; a requested backend that is missing fails."""
    b: Backend = request.param
    b.require()
    return b
