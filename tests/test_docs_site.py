"""The documentation site builds with `mkdocs build --strict`, and its API page documents the API.

Strict mode turns every warning into an error: a broken link or anchor, a page
missing from the nav, a docstring griffe cannot parse, an API entry that names
nothing. The examples in the pages run in tests/test_docs.py.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import slq
from slq import adapters

ROOT = Path(__file__).resolve().parents[1]
NEEDED = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def _missing() -> list[str]:
    missing = []
    for name in NEEDED:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            missing.append(name)
    return missing


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = _missing()
    if missing:
        pytest.fail(
            f"the docs tools are not installed ({', '.join(missing)}): "
            "pip install -c constraints.txt '.[docs]'"
        )
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    if result.returncode != 0:
        log = "\n".join(line for line in result.stderr.splitlines() if "│" not in line)
        pytest.fail(f"mkdocs build --strict failed (exit {result.returncode}):\n{log[-6000:]}")
    return out


def _anchors(page: Path) -> set[str]:
    return set(re.findall(r'id="([^"]+)"', page.read_text(encoding="utf-8")))


def test_every_page_is_built(site: Path) -> None:
    for page in sorted((ROOT / "docs").glob("*.md")):
        html = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert html.is_file(), f"docs/{page.name} was not built into {html}"


def test_api_page_documents_every_public_name(site: Path) -> None:
    anchors = _anchors(site / "api" / "index.html")
    names = {name.rsplit(".", 1)[-1] for name in anchors}
    public = set(slq.__all__) - {"__version__"}
    missing = sorted(public - names)
    assert not missing, f"docs/api.md lacks `::: slq.NAME` entries for {missing}"
    missing = sorted(f"slq.adapters.{name}" for name in adapters.__all__ if name not in names)
    assert not missing, f"docs/api.md lacks entries for {missing}"


def test_api_page_renders_docstrings(site: Path) -> None:
    html = (site / "api" / "index.html").read_text(encoding="utf-8")
    for anchor in ("slq.trace_function", "slq.adapters.torch.torch_hessian"):
        assert f'id="{anchor}"' in html, anchor
    # Sections of the numpydoc docstrings, parsed rather than shown as text:
    assert "Parameters:" in html
    assert "Hutch++" in html  # from slq.trace's docstring
