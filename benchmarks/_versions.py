"""Two checkouts of slq in one process, for before/after rounds that alternate.

Timings on a shared machine drift by more than the changes measured; rounds
that alternate between the two versions in one process see the same drift.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def _unload() -> None:
    for name in [m for m in sys.modules if m == "slq" or m.startswith("slq.")]:
        del sys.modules[name]


def load(path: str | None) -> dict[str, ModuleType]:
    """Import slq from the checkout at `path` (None: the installed one); return its modules."""
    _unload()
    if path is not None:
        sys.path.insert(0, path)
    try:
        importlib.import_module("slq")
    finally:
        if path is not None:
            sys.path.remove(path)
    return {m: module for m, module in sys.modules.items() if m == "slq" or m.startswith("slq.")}


def activate(modules: dict[str, ModuleType]) -> ModuleType:
    """Make the modules of one `load` the ones `import slq` finds; return `slq`."""
    _unload()
    sys.modules.update(modules)
    return modules["slq"]
