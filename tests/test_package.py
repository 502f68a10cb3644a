"""The package as installed: import cost, public names, the adapters guard, doctests."""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import pkgutil
import re
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


def test_no_public_name_shadows_a_module() -> None:
    # `slq.density` is the function; a module of that name would be unreachable by
    # attribute and importable only by path, two objects under one name.
    modules = {info.name for info in pkgutil.iter_modules(slq.__path__)}
    assert modules & set(slq.__all__) == set()


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
    # The training callbacks: Lightning and transformers run on torch, Keras on TensorFlow.
    "lightning": Backend.TORCH,
    "huggingface": Backend.TORCH,
    "keras": Backend.TENSORFLOW,
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


def _module_files() -> dict[str, Path]:
    """Module name -> source file, for slq/ and the adapters installed as slq.adapters."""
    from slq import adapters

    files = {}
    for prefix, folder in (
        ("slq", Path(slq.__file__).parent),
        ("slq.adapters", Path(adapters.__file__).parent),
    ):
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((prefix, *parts)).removesuffix(".__init__")
            files[name] = path
    return files


def _is_type_checking(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, in functions too, except those under `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in ast.iter_child_nodes(tree):
        if _is_type_checking(node):
            found += [n for child in node.orelse for n in _imports_in(child)]
        else:
            found += _imports_in(node)
    return found


def _imports_in(node: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    own = [node] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
    return own + _imports(node)


def _import_graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """Edges between slq modules, and every (module, source module, private name) imported."""
    files = _module_files()
    graph: dict[str, set[str]] = {name: set() for name in files}
    private = []
    for name, path in files.items():
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in files}
                continue
            if node.level or node.module not in files:
                continue
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in files:
                    graph[name].add(submodule)
                    continue
                graph[name].add(node.module)
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    private.append((name, node.module, alias.name))
    return graph, private


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """Return one import cycle as a path of module names, or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        path.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        state[name] = 2
        path.pop()
        return []

    for name in sorted(graph):
        if name not in state and (found := visit(name)):
            return found
    return []


def test_the_import_graph_has_no_cycle() -> None:
    # Imports inside functions count: a cycle hidden in a method is still a cycle.
    graph, _ = _import_graph()
    assert "slq.spectral_density" in graph["slq._density"]  # the graph is read at all
    assert _cycle(graph) == [], " -> ".join(_cycle(graph))


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


# Modules use each other's named API only (issue 15).


def test_no_private_name_is_imported_from_another_module() -> None:
    # A private module (slq._kernels) may be imported; a private name (_smooth) may not.
    # Every module of slq/, the adapters and the apps: (module, source, name) of each offence.
    graph, private = _import_graph()
    assert "slq.spectral_density" in graph and "slq.adapters.torch" in graph
    assert private == []


# The backend seam (issue 15): only slq/_backends/ knows array libraries by name.
FRAMEWORKS = ("jax", "torch", "tensorflow", "cupy")
LIBRARY_TESTS = ("is_jax_array", "is_torch_array", "isinstance(basis, list)", "xp.__name__")


def _core_files() -> list[Path]:
    folder = Path(slq.__file__).parent
    return [p for p in folder.glob("*.py") if p.name != "__main__.py"]


def test_no_core_module_outside_the_backends_names_an_array_library() -> None:
    files = _core_files()
    assert {"_lanczos.py", "_eigsh.py", "kpm.py", "_density.py"} <= {p.name for p in files}
    offending = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for node in _imports(ast.parse(text)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [
                f"{node.module}.{a.name}" for a in node.names if isinstance(node, ast.ImportFrom)
            ]
            for name in names:
                parts = name.split(".")
                if parts[0] in FRAMEWORKS or (
                    parts[:2] == ["slq", "_backends"] and len(parts) > 2 and parts[2] in FRAMEWORKS
                ):
                    offending.append((path.name, name))
        offending += [(path.name, test) for test in LIBRARY_TESTS if test in text]
    assert offending == []


def test_every_package_of_the_tree_is_listed_for_the_wheel() -> None:
    # An editable install finds any subpackage; a wheel only the listed ones.
    root = Path(__file__).resolve().parents[1]
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    listed = re.search(r"^packages = \[(.*)\]$", text, flags=re.M)
    assert listed, "pyproject.toml lists no packages"
    names = {name.strip().strip('"') for name in listed.group(1).split(",")}
    folders = {p.parent for p in (root / "slq").rglob("__init__.py")}
    tree = {".".join(p.relative_to(root).parts) for p in folders}
    assert tree | {"slq.adapters"} == names


def test_modules_and_classes_fit_a_reader() -> None:
    # A module over 700 lines or a class over 450 does more than one job (issue 15).
    long = []
    for name, path in _module_files().items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 700:
            long.append((name, text.count("\n")))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 450:
                long.append((f"{name}.{node.name}", node.end_lineno - node.lineno + 1))
    assert long == []
