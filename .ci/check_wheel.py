"""Check a built wheel: `adapters/` must ship as `slq/adapters/`, never top-level."""

import sys
import zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
problems = []
if "slq/adapters/__init__.py" not in names:
    problems.append("slq/adapters/__init__.py is missing")
if "slq/py.typed" not in names:
    problems.append("slq/py.typed is missing")
problems += [f"top-level file {n}" for n in names if n.startswith("adapters/")]
if problems:
    sys.exit("wheel check failed:\n  " + "\n  ".join(problems))
print(f"{sys.argv[1]}: {len(names)} files, slq/adapters/ inside, no top-level adapters/")
