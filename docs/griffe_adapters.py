"""Griffe extension for the docs build: read `adapters/` as `slq.adapters`.

setuptools installs the checkout's `adapters/` folder as the subpackage
`slq.adapters` (see `package-dir` in pyproject.toml), but griffe reads the
checkout statically and only finds subpackages inside `slq/`. This extension
visits `adapters/*.py` as `slq.adapters.*` once `slq` is loaded, so the API
reference shows the import paths users write, and no framework is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import griffe


class AdaptersSubpackage(griffe.Extension):
    """Attach the checkout's `adapters/` to the `slq` package as `slq.adapters`."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        """Visit `adapters/__init__.py` and its modules with `slq` as their parent."""
        if pkg.name != "slq" or "adapters" in pkg.members or pkg.filepath is None:
            return
        folder = Path(str(pkg.filepath)).parent.parent / "adapters"
        if not (folder / "__init__.py").is_file():
            return
        adapters = _visit(loader, "adapters", folder / "__init__.py", pkg)
        pkg.set_member("adapters", adapters)
        for path in sorted(folder.glob("*.py")):
            if path.stem != "__init__":
                adapters.set_member(path.stem, _visit(loader, path.stem, path, adapters))


def _visit(loader: griffe.GriffeLoader, name: str, path: Path, parent: griffe.Module) -> Any:
    code = path.read_text(encoding="utf-8")
    loader.lines_collection[path] = code.splitlines(keepends=False)
    return griffe.visit(
        name,
        filepath=path,
        code=code,
        extensions=loader.extensions,
        parent=parent,
        docstring_parser=loader.docstring_parser,
        docstring_options=loader.docstring_options,
        lines_collection=loader.lines_collection,
        modules_collection=loader.modules_collection,
    )
