"""The ``slq`` command: ``slq demo`` and ``slq density FILE``.

``slq density`` estimates the eigenvalue density of a symmetric matrix stored
in a file (``.npy``, ``.npz`` dense or ``scipy.sparse.save_npz``, Matrix Market
``.mtx``) and prints its curvature summaries (`SpectralDensity.summary`) as text
or JSON; ``slq demo`` writes the figures and summary of the packaged demo.

A mistake the user can fix (a missing or malformed file, a non-symmetric
matrix, a bad option value) is reported as one line, ``slq: error: ...``, on
standard error with exit status 2, as argparse reports usage errors.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import math
import os
import sys
import textwrap
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from slq._version import __version__
from slq.density import DEFAULT_NUM_PROBES, DEFAULT_NUM_STEPS, density
from slq.lanczos import REORTHOGONALIZE

__all__ = ["load_matrix", "main"]

EXIT_ERROR = 2
"""Exit status of a usage or input error, as for argparse's own usage errors."""

_NPY_MAGIC = b"\x93NUMPY"
_DENSE_NAMES = ("a", "arr_0", "matrix")
_SPARSE_KEYS = (
    {"format", "shape", "data", "indices", "indptr"},
    {"format", "shape", "data", "row", "col"},
)
# Exact symmetry up to rounding: a matrix symmetrised as (A + Aᵀ)/2 passes in any precision.
_SYMMETRY_RTOL = 1e-12
_DPI = 150
_SCIPY_HINT = "pip install scipy"
_PLOT_HINT = "pip install 'slq[plot]'"
# What to install for a missing module, where the distribution is named otherwise.
_INSTALL = {"matplotlib": "'slq[plot]'", "torch": "'slq[torch]'", "sklearn": "scikit-learn"}


class _UsageError(Exception):
    """An error the user can fix: reported as one line with exit status 2."""


# --------------------------------------------------------------------------- the parser


def _parser() -> argparse.ArgumentParser:
    """Return the parser of ``slq`` and its commands."""
    parser = argparse.ArgumentParser(
        prog="slq",
        description=(
            "Stochastic Lanczos quadrature: eigenvalue densities of symmetric matrices "
            "from matrix-vector products."
        ),
        epilog="Run 'slq COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"slq {__version__}")
    _add_verbose(parser, default=False)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands", required=True
    )
    _add_demo(commands)
    _add_density(commands)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, default: Any) -> None:
    # A command's default must not overwrite a -v given before the command.
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="log progress of the 'slq' logger to standard error",
    )


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="write the demo's figures and summary into a folder",
        description=(
            "Run the packaged demo and write its Hessian eigenvalue densities as PNG figures, "
            "summary.md and summary.json into --out. It needs the 'torch' and 'plot' extras "
            "and scikit-learn."
        ),
    )
    demo.add_argument(
        "--out", default="slq-demo", metavar="DIR", help="folder (default: %(default)s)"
    )
    demo.add_argument("--quick", action="store_true", help="smaller problems, for a fast check")
    demo.add_argument("--seed", type=int, default=0, metavar="S", help="probe seed (default: 0)")
    _add_verbose(demo, default=argparse.SUPPRESS)


def _add_density(commands: Any) -> None:
    command = commands.add_parser(
        "density",
        help="estimate the eigenvalue density of a symmetric matrix stored in a file",
        description=(
            "Estimate the eigenvalue density of a real symmetric matrix by stochastic Lanczos "
            "quadrature and print its summaries: extreme Ritz values, |lambda_min|/lambda_max, "
            "the negative mass with its standard error and bracket, the outliers and the "
            "Wasserstein-1 error bound. FILE is a .npy array, a .npz archive (one array, or "
            "one named 'a', 'arr_0' or 'matrix'; or a scipy.sparse.save_npz file) or a "
            "Matrix Market .mtx file (sparse .npz and .mtx need scipy)."
        ),
    )
    command.add_argument("file", metavar="FILE", type=Path, help=".npy, .npz or .mtx file")
    command.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_NUM_STEPS,
        metavar="M",
        help="Lanczos steps (matrix-vector products) per probe, capped at n (default: %(default)s)",
    )
    command.add_argument(
        "--probes",
        type=int,
        default=DEFAULT_NUM_PROBES,
        metavar="K",
        help="random probes (default: %(default)s)",
    )
    command.add_argument("--seed", type=int, default=0, metavar="S", help="probe seed (default: 0)")
    command.add_argument(
        "--reorthogonalize",
        choices=REORTHOGONALIZE,
        default="full",
        help="how the Lanczos basis is kept orthogonal (default: %(default)s; see slq.lanczos)",
    )
    command.add_argument(
        "--plot",
        type=Path,
        metavar="PATH",
        help="also draw the density into PATH (needs matplotlib)",
    )
    command.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON (non-finite numbers as null) instead of text",
    )
    _add_verbose(command, default=argparse.SUPPRESS)


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``slq`` command line and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success; 2 for a usage error or an input the command cannot use,
        reported as one line ``slq: error: ...`` on standard error.

    Examples
    --------
    >>> from slq.cli import main
    >>> status = main(["--version"])  # doctest: +ELLIPSIS
    slq ...
    >>> status
    0
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors: argparse has printed
        return exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    with _logging(verbose=args.verbose):
        try:
            return _run_demo(args) if args.command == "demo" else _run_density(args)
        except _UsageError as failure:
            print(f"slq: error: {_one_line(str(failure))}", file=sys.stderr)
            return EXIT_ERROR
        except BrokenPipeError:  # `slq density ... | head`: the reader has gone
            _silence_stdout()
            return 1


def _silence_stdout() -> None:
    """Point stdout at devnull, so that flushing it at exit raises no second BrokenPipeError.

    The recipe of the Python docs (library/signal.html, "Note on SIGPIPE").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced by a non-file object
        pass


@contextmanager
def _logging(*, verbose: bool) -> Iterator[None]:
    """With `verbose`, send the "slq" logger's INFO records to stderr, for this call only."""
    if not verbose:
        yield
        return
    logger = logging.getLogger("slq")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("slq: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _one_line(message: str) -> str:
    return " ".join(message.split())


# --------------------------------------------------------------------------- slq demo


def _run_demo(args: argparse.Namespace) -> int:
    """Run `slq.demo.run` and say where its files went."""
    _check_seed(args.seed)
    out = Path(args.out)
    try:
        demo = importlib.import_module("slq.demo")  # written by another module, maybe absent
        summary = demo.run(out, quick=args.quick, seed=args.seed, progress=None)
    except ImportError as error:
        raise _UsageError(_missing(error, "the demo")) from error
    except (ValueError, TypeError, OSError) as error:
        raise _UsageError(str(error)) from error
    for line in _demo_report(out, summary):
        print(line)
    return 0


def _missing(error: ImportError, what: str) -> str:
    """Say which optional dependency `what` needs, from an ImportError."""
    name = (error.name or "").partition(".")[0]
    if name and name != "slq":
        return f"{what} needs {name}: pip install {_INSTALL.get(name, name)}"
    return f"{what} is unavailable: {error}"


def _demo_report(out: Path, summary: Any) -> list[str]:
    """Lines listing the demo's figures, its summary files and a digest of its summary."""
    summary = summary if isinstance(summary, dict) else {}
    files = summary.get("files")
    if not isinstance(files, (list, tuple)):
        files = sorted(out.iterdir()) if out.is_dir() else []
    paths = [Path(f) for f in files]
    figures = [p for p in paths if p.suffix.lower() in (".png", ".pdf", ".svg")]
    summaries = [p for p in paths if p.name.startswith("summary")]
    others = [p for p in paths if p not in figures and p not in summaries]
    lines = [f"slq demo: wrote {len(paths)} file{'s' * (len(paths) != 1)} into {out}"]
    for title, group in (("figures", figures), ("summary", summaries), ("other files", others)):
        if group:
            lines += [f"{title}:", *(f"  {p}" for p in group)]
    digest = _digest(summary)
    return [*lines, "", textwrap.fill(digest, width=79)] if digest else lines


def _digest(summary: dict[str, Any]) -> str:
    """One paragraph of the summary's top-level scalar fields (nested ones are in the files)."""
    fields = [
        f"{key} = {_number(value) if isinstance(value, float) else value}"
        for key, value in summary.items()
        if key != "files" and isinstance(value, (str, int, float, bool))
    ]
    return "; ".join(fields) + "." if fields else ""


# --------------------------------------------------------------------------- slq density


def _run_density(args: argparse.Namespace) -> int:
    """Load the matrix, run `slq.density`, print its summary, and draw it with --plot."""
    _check_options(args)
    try:
        matrix = load_matrix(args.file)
        # An overflowing product is reported by the library as FloatingPointError, in one
        # line; numpy's own RuntimeWarning would only repeat it over several.
        with np.errstate(over="ignore", invalid="ignore"):
            dos = density(
                matrix,
                num_steps=args.steps,
                num_probes=args.probes,
                seed=args.seed,
                reorthogonalize=args.reorthogonalize,
            )
        summary = dos.summary()
    except ImportError as error:
        raise _UsageError(str(error)) from error
    except (ValueError, TypeError, OSError, FloatingPointError) as error:
        raise _UsageError(str(error)) from error
    if args.json:
        payload = _json_ready({"file": str(args.file), **summary})
        print(json.dumps(payload, indent=2, allow_nan=False))
    else:
        print("\n".join(_density_report(args.file, summary)))
    if args.plot is not None:
        s = summary
        title = f"{args.file.name}: n = {s['dim']}, {s['num_probes']} probes x {s['num_steps']}"
        _save_plot(dos, args.plot, title=f"{title} steps")
        print(f"slq: figure written to {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _check_options(args: argparse.Namespace) -> None:
    """Refuse bad option values before the (possibly long) load and run."""
    for option, value in (("--steps", args.steps), ("--probes", args.probes)):
        if value < 1:
            msg = f"{option} must be >= 1, got {value}"
            raise _UsageError(msg)
    _check_seed(args.seed)
    if args.plot is not None:
        _check_plot_path(args.plot)


def _check_seed(seed: int) -> None:
    if seed < 0:
        msg = f"--seed must be >= 0, got {seed}"
        raise _UsageError(msg)


def _check_plot_path(path: Path) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        msg = f"--plot needs matplotlib: {_PLOT_HINT}"
        raise _UsageError(msg)
    from matplotlib.backend_bases import FigureCanvasBase

    if not path.parent.is_dir():
        msg = f"--plot: folder {path.parent} does not exist"
        raise _UsageError(msg)
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix and path.suffix[1:].lower() not in formats:
        allowed = ", ".join(sorted(formats))
        msg = f"--plot: unknown figure format {path.suffix!r}; use one of {allowed}"
        raise _UsageError(msg)


def _save_plot(dos: Any, path: Path, *, title: str) -> None:
    """Draw `dos` on a figure of its own (matplotlib's object API: no pyplot state)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = dos.plot(figure.subplots())
    ax.set_title(title)
    try:
        figure.savefig(path, dpi=_DPI)
    except (OSError, ValueError) as error:
        msg = f"--plot: cannot write {path}: {error}"
        raise _UsageError(msg) from error


def _json_ready(value: Any) -> Any:
    """`value` with NaN and infinities as None: strict JSON has no such numbers."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------- the text report


def _number(x: Any) -> str:
    """Six significant digits; "n/a" for a missing or undefined value (one probe: no stderr)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.6g}"


def _density_report(path: Path, s: dict[str, Any]) -> list[str]:
    """Return the dict of `SpectralDensity.summary` as lines of text."""
    lines = [
        f"{path}: n = {s['dim']}, {s['num_steps']} Lanczos steps x {s['num_probes']} probes "
        f"= {s['num_matvecs']} matvecs (seed {s['seed']})",
        *_extremes(s),
        *_negative_mass(s),
        *_outliers(s),
        *_wasserstein(s),
    ]
    return [lines[0], *(f"  {line}" for line in lines[1:])]


def _extremes(s: dict[str, Any]) -> list[str]:
    ratio = s.get("extreme_ratio")
    residuals = (ratio["residual_min"], ratio["residual_max"]) if ratio else (None, None)
    lines = []
    for name, residual in zip(("lambda_min", "lambda_max"), residuals, strict=True):
        note = f" (Ritz value, residual {_number(residual)})" if residual is not None else ""
        lines.append(f"{name:<24}{_number(s[name])}{note}")
    if ratio:
        lines.append(
            f"{'|lambda_min|/lambda_max':<24}{_number(ratio['value'])} "
            f"in [{_number(ratio['lower'])}, {_number(ratio['upper'])}]"
        )
    return lines


def _negative_mass(s: dict[str, Any]) -> list[str]:
    mass = s.get("negative_mass")
    if not mass:
        return []
    return [
        f"{'negative mass':<24}{_number(mass['value'])} +/- {_number(mass['stderr'])} (stderr), "
        f"bracket [{_number(mass['lower'])}, {_number(mass['upper'])}]"
    ]


def _outliers(s: dict[str, Any]) -> list[str]:
    if "outliers" not in s:
        return []
    found = ", ".join(
        f"{_number(o['position'])} (count {_number(o['count'])})" for o in s["outliers"]
    )
    lines = [f"{'outliers':<24}{found or 'none'}"]
    if s.get("bulk"):
        low, high = s["bulk"]
        lines.append(f"{'bulk':<24}[{_number(low)}, {_number(high)}]")
    return lines


def _wasserstein(s: dict[str, Any]) -> list[str]:
    bound = s.get("wasserstein_bound")
    if not bound:
        return []
    return [
        f"{'W1 error bound':<24}{_number(bound['total'])} (quadrature "
        f"{_number(bound['quadrature'])} + sampling {_number(bound['sampling'])}, "
        f"{100 * bound['confidence']:g}% confidence)"
    ]


# --------------------------------------------------------------------------- loading


def load_matrix(path: str | Path) -> Any:
    """Load a real symmetric matrix from a ``.npy``, ``.npz`` or Matrix Market ``.mtx`` file.

    Nothing is unpickled. A ``.npz`` archive holds one dense array (or one named
    "a", "arr_0" or "matrix") or is a `scipy.sparse.save_npz` file; sparse
    archives and ``.mtx`` files need scipy. Integer, boolean and half-precision
    entries become float64.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    numpy.ndarray or scipy.sparse.csr_matrix
        Square, finite, real and symmetric: max |A - Aᵀ| ≤ 1e-12 max |A|.

    Raises
    ------
    OSError
        If the file cannot be read.
    ValueError
        For an unknown extension, a malformed file or a matrix that is not
        2-D, square, real, finite and symmetric.
    ImportError
        Without scipy, for a sparse ``.npz`` or a ``.mtx`` file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from slq.cli import load_matrix
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "a.npy"
    ...     np.save(path, np.diag([1, 2, 3]))
    ...     load_matrix(path).dtype
    dtype('float64')
    """
    path = Path(path)
    if not path.is_file():
        msg = f"no such file: {path}" if not path.exists() else f"not a file: {path}"
        raise OSError(msg)
    name = path.name.lower()
    if name.endswith(".npy"):
        return _checked(_load_npy(path), path)
    if name.endswith(".npz"):
        return _checked(_load_npz(path), path)
    if name.endswith((".mtx", ".mtx.gz")):
        return _checked(_load_mtx(path), path)
    msg = f"{path}: unknown file type {path.suffix!r}; use .npy, .npz or .mtx"
    raise ValueError(msg)


def _load_npy(path: Path) -> np.ndarray:
    with path.open("rb") as file:
        if file.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
            msg = f"{path} is not a .npy file (no NumPy header)"
            raise ValueError(msg)
    return _unpickled(lambda: np.load(path, allow_pickle=False), path)


def _load_npz(path: Path) -> Any:
    if not zipfile.is_zipfile(path):
        msg = f"{path} is not a .npz file (not a zip archive)"
        raise ValueError(msg)
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        if any(required <= keys for required in _SPARSE_KEYS):
            return _scipy_sparse(path).load_npz(path)
        name = _dense_name(keys, path)
        return _unpickled(lambda: archive[name], path)


def _dense_name(keys: set[str], path: Path) -> str:
    """Return the archive's matrix: its only array, or the one with a conventional name."""
    if len(keys) == 1:
        return next(iter(keys))
    for name in _DENSE_NAMES:
        if name in keys:
            return name
    msg = (
        f"{path} holds {len(keys)} arrays ({', '.join(sorted(keys))}): save one array, "
        f"or name the matrix one of {', '.join(_DENSE_NAMES)}"
    )
    raise ValueError(msg)


def _unpickled(load: Any, path: Path) -> Any:
    try:
        return load()
    except ValueError as error:
        if "allow_pickle" in str(error):
            msg = f"{path} holds a pickled object array, which slq never loads: save numbers"
            raise ValueError(msg) from error
        msg = f"{path}: {error}"
        raise ValueError(msg) from error
    except (EOFError, zipfile.BadZipFile, zlib.error) as error:
        msg = f"{path} is malformed: {error}"
        raise ValueError(msg) from error


def _load_mtx(path: Path) -> Any:
    _scipy_sparse(path)
    import scipy.io

    try:
        return scipy.io.mmread(path)
    except (ValueError, EOFError, IndexError) as error:
        msg = f"{path} is not a valid Matrix Market file: {error}"
        raise ValueError(msg) from error


def _scipy_sparse(path: Path) -> Any:
    try:
        import scipy.sparse
    except ImportError as error:
        msg = f"reading {path} needs scipy: {_SCIPY_HINT}"
        raise ImportError(msg) from error
    return scipy.sparse


# --------------------------------------------------------------------------- checks


def _checked(a: Any, path: Path) -> Any:
    """Return `a` as a float array or CSR matrix once it is square, real, finite, symmetric."""
    sparse = sys.modules.get("scipy.sparse")
    is_sparse = sparse is not None and sparse.issparse(a)
    if not is_sparse:
        a = np.asarray(a)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        msg = f"{path}: the matrix must be square and non-empty, got shape {a.shape}"
        raise ValueError(msg)
    a = a.astype(_real_dtype(a.dtype, path), copy=False)
    if is_sparse:
        a = a.tocsr()
    _check_finite(a.data if is_sparse else a, path)
    _check_symmetric(a, path, is_sparse=is_sparse)
    return a


def _real_dtype(dtype: np.dtype, path: Path) -> np.dtype:
    """float32 and float64 stay; other real numbers become float64 (the library needs floats)."""
    if dtype.kind == "c":
        msg = f"{path}: the matrix is complex ({dtype}); slq needs a real symmetric matrix"
        raise ValueError(msg)
    if dtype.kind not in "biuf":
        msg = f"{path}: the matrix must hold real numbers, got dtype {dtype}"
        raise ValueError(msg)
    keep = dtype in (np.dtype(np.float32), np.dtype(np.float64))
    return dtype if keep else np.dtype(np.float64)


def _check_finite(values: np.ndarray, path: Path) -> None:
    if not np.isfinite(values).all():
        msg = f"{path}: the matrix holds NaN or infinite entries"
        raise ValueError(msg)


def _check_symmetric(a: Any, path: Path, *, is_sparse: bool) -> None:
    """Raise unless max |A - Aᵀ| ≤ 1e-12 max(max |A|, tiny)."""
    asymmetry = float(abs(a - a.T).max()) if is_sparse else float(np.abs(a - a.T).max())
    largest = float(abs(a).max()) if is_sparse else float(np.abs(a).max())
    tolerance = _SYMMETRY_RTOL * max(largest, float(np.finfo(a.dtype).tiny))
    if not asymmetry <= tolerance:
        msg = (
            f"{path}: the matrix is not symmetric: max |A - A^T| = {asymmetry:.3g} with "
            f"max |A| = {largest:.3g} (allowed {tolerance:.3g}); symmetrise it as (A + A^T)/2"
        )
        raise ValueError(msg)
