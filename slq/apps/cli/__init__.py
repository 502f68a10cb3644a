"""The ``slq`` command: ``slq demo`` and ``slq density FILE``.

``slq density`` estimates the eigenvalue density of a symmetric matrix stored
in a file (``.npy``, ``.npz`` dense or ``scipy.sparse.save_npz``, Matrix Market
``.mtx``) and prints its curvature summaries (`SpectralDensity.summary`) as text
or JSON; ``slq demo`` writes the figures and summary of the packaged demo.

A mistake the user can fix (a missing or malformed file, a non-symmetric
matrix, a bad option value, a run too large for the memory available) is
reported as one line, ``slq: error: ...``, on standard error with exit status
2, before anything is computed, as argparse reports usage errors. Output that
cannot be written (a full disk, a closed pipe) is one line with status 1;
Ctrl-C is ``slq: interrupted`` with status 130.

One module per job: ``program`` (`main`), ``parser``, one per command
(``density``, ``demo``), ``report`` (the text of ``slq density``), ``output``
(standard output), ``figure`` (--plot), ``resources`` (memory), ``errors``;
reading files: ``matrix_files`` (`matrix_info`, `load_matrix`) over one module
per format (``npy_format``, ``npz_files``, ``mtx_files``), ``sparse_arrays``,
``matrix_checks``, ``matrix_info`` and ``file_reading``.
"""

from slq.apps.cli.matrix_files import load_matrix, matrix_info
from slq.apps.cli.matrix_info import MatrixInfo
from slq.apps.cli.program import main

__all__ = ["MatrixInfo", "load_matrix", "main", "matrix_info"]
