"""The package as installed: import cost, public names, the adapters guard, doctests."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import Backend, need

import slq

HEAVY = ("torch", "jax", "tensorflow", "matplotlib", "scipy", "tqdm")


def test_import_slq_pulls_in_no_framework() -> None:
    code = (
        "import sys, numpy as np, slq\n"
        "slq.density(np.eye(4), num_probes=2, seed=0)\n"
        "from slq import adapters\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    # -I keeps the working directory (a checkout's `slq/`) off sys.path.
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_public_names_are_exactly_all() -> None:
    public = {name for name in dir(slq) if not name.startswith("_")}
    modules = {name for name, value in vars(slq).items() if type(value).__name__ == "module"}
    assert public - modules == set(slq.__all__) - {"__version__"}


def test_adapters_refuse_any_other_import_name() -> None:
    from slq import adapters

    spec = importlib.util.spec_from_file_location("adapters", adapters.__file__)
    module = importlib.util.module_from_spec(spec)
    with pytest.raises(ImportError, match=r"must be imported as `slq\.adapters`"):
        spec.loader.exec_module(module)


def test_tests_run_against_the_installed_package_not_a_shadow() -> None:
    # With --import-mode=importlib the checkout's folder must not be on sys.path.
    assert Path(slq.__file__).parent.name == "slq"
    assert str(Path(__file__).resolve().parents[1]) not in sys.path


def _modules() -> list[str]:
    from slq import adapters  # mapped from adapters/: not found by walking slq/ in a checkout

    names = {info.name for info in pkgutil.walk_packages(slq.__path__, prefix="slq.")}
    names |= {info.name for info in pkgutil.iter_modules(adapters.__path__, prefix="slq.adapters.")}
    return sorted(names | {"slq.adapters"})


# Adapter modules need their framework: such a module is tested when its backend is requested.
FRAMEWORK_OF = {
    "torch": Backend.TORCH,
    "_torch": Backend.TORCH,
    "jax": Backend.JAX,
    "_jax": Backend.JAX,
    "tensorflow": Backend.TENSORFLOW,
    "_tensorflow": Backend.TENSORFLOW,
}


@pytest.mark.parametrize("name", ["slq", *_modules()])
def test_docstring_examples_run(name: str) -> None:
    leaf = name.rsplit(".", 1)[-1]
    for prefix, backend in FRAMEWORK_OF.items():
        if leaf == prefix or leaf.startswith(prefix + "_"):
            need(backend)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest failures in {name}"


# An operator's `matvec` / `matmat` are the LinearOperator protocol: its class shows them.
_PROTOCOL_MEMBERS = ("matvec", "matmat")


def _public_callables() -> list[tuple[str, object]]:
    from slq import adapters

    found = []
    for owner, names in ((slq, slq.__all__), (adapters, adapters.__all__)):
        for name in names:
            if name == "__version__":
                continue
            obj = getattr(owner, name)
            found.append((f"{owner.__name__}.{name}", obj))
            if isinstance(obj, type) and obj is not slq.LinearOperator:  # a protocol's stubs
                for member, value in vars(obj).items():
                    if member.startswith("_") or member in _PROTOCOL_MEMBERS:
                        continue
                    if isinstance(value, classmethod):
                        value = value.__func__
                    if callable(value):
                        found.append((f"{owner.__name__}.{name}.{member}", value))
    return found


def test_every_public_function_and_class_has_an_example() -> None:
    need(Backend.TORCH)
    need(Backend.JAX)
    need(Backend.TENSORFLOW)
    missing = [name for name, obj in _public_callables() if ">>>" not in (obj.__doc__ or "")]
    assert not missing, f"public names without a docstring example: {missing}"


def test_the_core_never_imports_the_applications() -> None:
    # `python -m slq` (slq/__main__.py) is the command line's entry point: the one exception.
    core = [p for p in Path(slq.__file__).parent.glob("*.py") if p.name != "__main__.py"]
    assert core, "no core modules found"
    for path in core:
        text = path.read_text(encoding="utf-8")
        assert "slq.apps" not in text and "from slq import apps" not in text, path.name
    code = "import sys, numpy as np, slq\nslq.density(np.eye(4), num_probes=2, seed=0)\n"
    code += "print([m for m in sys.modules if m.startswith('slq.apps')])"
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert (out.returncode, out.stdout.strip()) == (0, "[]"), out.stderr
