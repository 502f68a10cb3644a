"""Check a built wheel: every module of the source tree ships, `adapters/` as `slq/adapters/`.

Packages are listed explicitly in pyproject.toml, so a subpackage left out of the list
would silently vanish from the wheel; compare the wheel with the checkout instead.
"""

import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
expected = {f"slq/{p.relative_to(ROOT / 'slq').as_posix()}" for p in (ROOT / "slq").rglob("*.py")}
expected |= {f"slq/adapters/{p.name}" for p in (ROOT / "adapters").glob("*.py")}
expected.add("slq/py.typed")
problems = [f"{name} is missing" for name in sorted(expected - names)]
problems += [f"top-level file {n}" for n in sorted(names) if n.startswith("adapters/")]
if problems:
    sys.exit("wheel check failed:\n  " + "\n  ".join(problems))
print(f"{sys.argv[1]}: {len(names)} files, every module of slq/ and adapters/ inside")
