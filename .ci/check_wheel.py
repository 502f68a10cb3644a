"""Check a built wheel: `adapters/` ships as `slq/adapters/`, never top-level; the apps ship."""

import sys
import zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
problems = []
if "slq/adapters/__init__.py" not in names:
    problems.append("slq/adapters/__init__.py is missing")
if "slq/py.typed" not in names:
    problems.append("slq/py.typed is missing")
# Packages are listed explicitly in pyproject.toml: a subpackage left out would vanish here.
for module in (
    "apps/__init__.py",
    "apps/cli/__init__.py",
    "apps/cli/matrix_files.py",
    "apps/demo/__init__.py",
    "apps/demo/experiment.py",
):
    if f"slq/{module}" not in names:
        problems.append(f"slq/{module} is missing")
problems += [f"the removed module {n}" for n in ("slq/cli.py", "slq/demo.py") if n in names]
problems += [f"top-level file {n}" for n in names if n.startswith("adapters/")]
if problems:
    sys.exit("wheel check failed:\n  " + "\n  ".join(problems))
print(
    f"{sys.argv[1]}: {len(names)} files, slq/adapters/ and slq/apps/ inside, no top-level adapters/"
)
