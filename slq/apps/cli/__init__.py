"""The ``slq`` command: ``slq demo`` and ``slq density FILE``.

``slq density`` estimates the eigenvalue density of a symmetric matrix stored
in a file (``.npy``, ``.npz`` dense or ``scipy.sparse.save_npz``, Matrix Market
``.mtx``) and prints its curvature summaries (`SpectralDensity.summary`) as text
or JSON; ``slq demo`` writes the figures and summary of the packaged demo.

A mistake the user can fix (a missing or malformed file, a non-symmetric
matrix, a bad option value) is reported as one line, ``slq: error: ...``, on
standard error with exit status 2, as argparse reports usage errors.

One module per job: ``program`` (`main`), ``parser``, one per command
(``density``, ``demo``), ``report`` (the text of ``slq density``),
``matrix_files`` (`load_matrix`) and ``errors`` (the usage error).
"""

from slq.apps.cli.matrix_files import load_matrix
from slq.apps.cli.program import main

__all__ = ["load_matrix", "main"]
