"""`slq.density`: the spectral density of an operator by stochastic Lanczos quadrature."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from slq._backends import accumulation_dtype, eps, to_host
from slq._batch_split import BatchSplit
from slq._checkpoint import Checkpoint
from slq._lanczos import LanczosResult, apply_rows, prepare_start, run_batch
from slq._probes import PROBES, draw_probes, root_seed, seed_sequence
from slq._progress import LanczosStep, progress_bar, step_hook
from slq._reorthogonalization import policy
from slq._traced_density import traced_density
from slq._validate import (
    check_bool,
    check_callable,
    check_choice,
    check_optional_bool,
    check_path,
    check_positive_float,
    check_positive_int,
    check_seed,
)
from slq.memory import check_max_memory
from slq.operator import as_operator
from slq.spectral_density import SpectralDensity

__all__ = ["DEFAULT_NUM_PROBES", "DEFAULT_NUM_STEPS", "check_options", "density"]

logger = logging.getLogger("slq")

DEFAULT_NUM_STEPS = 90
"""Ghorbani, Krishnan & Xiao (2019) find m ≈ 90 steps resolve a network Hessian's density."""

DEFAULT_NUM_PROBES = 10
"""Ten probes: the curve already concentrates for large n (its variance is O(1/n) per
probe), and ten give a probe-to-probe standard error with nine degrees of freedom."""


def _check_symmetric(op: Any, entropy: int) -> None:
    """Compare uᵀ(Av) with vᵀ(Au) for two random unit vectors; raise if they differ."""
    xp, n = op.xp, op.shape[0]
    rng = np.random.default_rng(seed_sequence(entropy, 0, 0))
    pair = rng.standard_normal((n, 2))
    rows = prepare_start(xp.asarray(pair, dtype=op.dtype, device=op.device), op)
    images = apply_rows(op, rows, 0)
    acc = accumulation_dtype(xp, op.device, op.dtype)
    rows, images = xp.astype(rows, acc), xp.astype(images, acc)
    u_av = float(to_host(xp.vecdot(rows[0, :], images[1, :]))[()])
    v_au = float(to_host(xp.vecdot(rows[1, :], images[0, :]))[()])
    scale = float(np.sum(to_host(xp.linalg.vector_norm(images, axis=-1))))
    tolerance = np.sqrt(eps(op.dtype, xp))
    if not abs(u_av - v_au) <= tolerance * scale:
        msg = (
            f"the operator is not symmetric: for random unit u, v, u·(Av) = {u_av:.6g} but "
            f"v·(Au) = {v_au:.6g} (difference {abs(u_av - v_au):.2g}, tolerance "
            f"{tolerance * scale:.2g}); SLQ needs a symmetric operator"
        )
        raise ValueError(msg)


def _pad(results: list[LanczosResult]) -> tuple[np.ndarray, np.ndarray]:
    """Stack the coefficients of probe batches; zeros past a breakdown mark its end."""
    m = max(r.alpha.shape[1] for r in results)
    alpha = np.concatenate([np.pad(r.alpha, ((0, 0), (0, m - r.alpha.shape[1]))) for r in results])
    beta = np.concatenate([np.pad(r.beta, ((0, 0), (0, m - 1 - r.beta.shape[1]))) for r in results])
    return alpha, beta


def density(
    op: Any,
    /,
    *,
    num_steps: int = DEFAULT_NUM_STEPS,
    num_probes: int | None = None,
    seed: int | np.random.Generator | None = None,
    probe: str = "rademacher",
    reorthogonalize: str = "full",
    offload_basis: bool = False,
    probe_batch_size: int | None = None,
    check_symmetric: bool = False,
    tol: float | None = None,
    max_matvecs: int | None = None,
    max_memory: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    callback: Callable[[LanczosStep], Any] | None = None,
) -> SpectralDensity:
    r"""Estimate the eigenvalue density of a symmetric operator by stochastic Lanczos quadrature.

    For each random unit probe v, m Lanczos steps give a Gauss rule (θ_i, τ_i)
    for the spectral measure μ_v = Σ_j (u_jᵀv)² δ_{λ_j}; the average over probes
    estimates the spectral density (1/n) Σ_j δ_{λ_j} (Lin, Saad & Yang 2016;
    Ubaru, Chen & Saad 2017; Ghorbani, Krishnan & Xiao 2019).

    Parameters
    ----------
    op
        A symmetric operator: anything `aslinearoperator` accepts.
    num_steps : int, default 90
        m, Lanczos steps (operator products) per probe; capped at n.
    num_probes : int, optional
        k, the number of random probes: 10 by default, or with `tol` the most
        that may be drawn (default 1000). The estimate's error falls like
        1/sqrt(k n); at least 2 are needed for a standard error.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Where the probes come from. Probe i depends only on the seed and i: the
        same seed gives the same probes on every backend and for every
        `probe_batch_size`, hence the same result to rounding (bit for bit when
        the call is repeated in one process). None draws fresh entropy,
        recorded in the result's ``seed`` so that the run can be repeated.
    probe : {"rademacher", "gaussian"}
        Distribution of the probe entries before normalisation to unit norm.
    reorthogonalize : {"full", "partial", "none"}
        See `lanczos`. ``"partial"`` gives the nodes and weights of ``"full"``
        to working precision with Gram–Schmidt at only some steps.
    offload_basis : bool, default False
        Keep the stored basis in host memory, not on the operator's device
        (see `lanczos`): for a GPU that cannot hold b·m·n numbers.
    probe_batch_size : int, optional
        Run the probes b at a time, bounding the stored basis to b·(m+1)·n
        numbers. Default: all probes in one batch (one ``matmat`` per step),
        which a short timed trial may split into parts of a few probes where
        those run faster (cheap products beside a basis larger than the cache;
        the same coefficients to rounding; see the docs' "Batches split by
        measurement"). A value given is obeyed exactly.
    check_symmetric : bool, default False
        First compare uᵀ(Av) with vᵀ(Au) for random u, v (two products) and
        raise if the operator is not symmetric to within sqrt(eps).
    tol : float, optional
        Adaptive run: add batches of probes (`probe_batch_size`, default 4)
        until the L1 norm of the standard error of the smoothed density,
        ∫ stderr(t) dt on the default grid and kernel width, is at most `tol`
        (the density integrates to 1, so `tol` is a relative error; adding
        probes changes the curve by about this much), or until `max_matvecs`
        or `num_probes` stops it first. At least 4 probes are drawn. The
        result's ``stop_reason`` says which happened.
    max_matvecs : int, optional
        Budget of operator products: no batch is started that could exceed it.
    max_memory : int, optional
        Budget in bytes for the arrays slq holds (see `memory_estimate`; the
        operator's own memory is not counted). If the estimate for one batch
        exceeds it, a ValueError saying what would fit is raised before any
        product (the largest batch that fits is found by bisection, at once
        for any `num_probes`). A batch slq may split into parts (see the docs'
        "Batches split by measurement") runs them without copying their bases
        where only that copy would not fit.
    checkpoint : str or path-like, optional
        A ``.npz`` file to which every finished batch of probes is written
        atomically (write, then rename). Calling again with the same arguments
        resumes from the finished batches and gives the result an uninterrupted
        run would have given; a run killed at any moment loses at most the
        batch in flight. With ``seed=None`` the checkpoint's seed is reused.
        Set `probe_batch_size` to choose how much work a batch holds. Refused
        before any product: a directory that is missing or read-only
        (ValueError), a checkpoint held by another live run (RuntimeError: a
        lock file beside it, ``<checkpoint>.lock``), a file written for another
        operator size or dtype, number of steps, seed, probe kind,
        reorthogonalisation or batch size, or that violates the format
        (ValueError naming the file and the field). Then one product with a
        fixed vector, not counted in ``num_matvecs`` nor against
        `max_matvecs`, fingerprints the operator, and a file written for
        another operator is refused (ValueError). An operator with
        ``writes_files = False`` (a data-parallel adapter on a rank other than
        0) reads the checkpoint but never writes or locks it. See the docs'
        section on checkpoints for what they protect against and what not.
    progress : bool, optional
        A tqdm progress bar over the products, with their rate. None (default)
        shows one when stderr is a terminal and the run lasts more than two
        seconds; True always (needs tqdm); False never.
    callback : callable, optional
        Called after every Lanczos step with a `LanczosStep` (the batch's probe
        indices, the step, and the batch's α_j and β_j), e.g. to log to your
        own tools.

    Returns
    -------
    SpectralDensity
        The Lanczos coefficients of every probe and what derives from them.

    Raises
    ------
    ValueError
        For a non-square operator, a non-positive count, an unknown option,
        a `max_matvecs` too small for one batch of probes, an estimated
        memory above `max_memory`, or (with
        `check_symmetric`) a non-symmetric operator.
    TypeError
        For a complex or integer operator, or an argument of the wrong type
        (a string for a number, a truthy value for a bool).
    FloatingPointError
        If the operator produces NaN or Inf (the message names probe and step).

    Examples
    --------
    >>> import numpy as np
    >>> import slq

    A bulk in [-1, 1] and three outliers, as in a network Hessian:

    >>> eigenvalues = np.concatenate([np.linspace(-1.0, 1.0, 397), [10.0, 20.0, 50.0]])
    >>> dos = slq.density(np.diag(eigenvalues), num_steps=30, num_probes=4, seed=0)
    >>> dos
    SpectralDensity(dim=400, num_probes=4, num_steps=30, lambda_min=-0.998223, lambda_max=50)
    >>> t = dos.grid(num=256)
    >>> curve, band = dos.evaluate(t), dos.stderr(t)

    Adaptive: probes are added until the density's standard error is small.

    >>> adaptive = slq.density(np.diag(eigenvalues), num_steps=30, tol=0.05, seed=0)
    >>> adaptive.stop_reason, adaptive.num_probes
    ('tol', 4)
    """
    # A data-parallel operator is replicated on every rank; one of them writes.
    writes_files = bool(getattr(op, "writes_files", True))
    owner = op  # what a batch split decided by measurement is remembered for
    op = as_operator(op)
    n = op.shape[0]
    m = min(check_positive_int("num_steps", num_steps), n)
    _check_settings(probe, reorthogonalize, offload_basis, check_symmetric, seed)
    checkpoint = None if checkpoint is None else check_path("checkpoint", checkpoint)
    check_optional_bool("progress", progress)
    check_callable("callback", callback)
    plan = _plan(m, num_probes, probe_batch_size, tol, max_matvecs)
    private_bases = check_max_memory(
        max_memory,
        op,
        m,
        plan.num_probes,
        reorthogonalize,
        plan.batch,
        offload_basis,
        may_split=probe_batch_size is None,
    )
    store = None if checkpoint is None else Checkpoint(checkpoint, writes=writes_files)
    if seed is None and store is not None:
        seed = store.stored_seed()  # resuming a seed=None run: its probes are on record
    entropy = root_seed(seed)
    reason = "num_probes"
    bar = progress_bar(progress, plan.num_probes * m, "slq.density")
    try:
        settings = _settings(op, m, entropy, probe, reorthogonalize, plan.batch)
        results = _resumable(store, op, settings, plan)  # lock and checks before any product
        recorded = None if store is None else store.splits
        split = (
            None
            if probe_batch_size is not None
            else BatchSplit(owner, recorded=recorded, private_bases=private_bases)
        )
        if check_symmetric:
            _check_symmetric(op, entropy)
        bar.update(sum(r.num_matvecs for r in results))
        for start in range(len(results) * plan.batch, plan.num_probes, plan.batch):
            if _converged(results, tol, n):
                reason = "tol"
                break
            if sum(r.num_matvecs for r in results) + plan.batch * m > plan.max_matvecs:
                reason = "max_matvecs"
                break
            batch = range(start, min(start + plan.batch, plan.num_probes))
            probes = draw_probes(probe, n, batch, entropy)
            rows = prepare_start(op.xp.asarray(probes, dtype=op.dtype, device=op.device), op)
            hook = step_hook(bar, callback, batch)
            result = run_batch(
                op,
                rows,
                m,
                policy(reorthogonalize),
                False,
                probe_offset=start,
                on_step=hook,
                offload_basis=offload_basis,
                split=split,
            )
            results.append(result)
            if op.backend.is_traced(result.alpha):  # inside a user's jax.jit
                _check_traceable(store, tol, max_matvecs)
                return _traced(op, results, plan, m, (entropy, probe, reorthogonalize))
            if store is not None and writes_files:
                store.save(results, splits=None if split is None else split.record())
        else:
            reason = "tol" if _converged(results, tol, n) else reason
    finally:
        bar.close()
        if store is not None:
            store.close()
    alpha, beta = _pad(results)
    logger.info("density: n=%d, %d probes x %d steps, seed=%d", n, alpha.shape[0], m, entropy)
    return SpectralDensity(
        alpha,
        beta,
        dim=n,
        num_matvecs=sum(r.num_matvecs for r in results) + 2 * check_symmetric,
        seed=entropy,
        probe=probe,
        reorthogonalize=reorthogonalize,
        residual_norm=np.concatenate([r.residual_norm for r in results]),
        stop_reason=reason,
    )


def _check_settings(
    probe: Any, reorthogonalize: Any, offload_basis: Any, check_symmetric: Any, seed: Any
) -> None:
    check_choice("probe", probe, PROBES)
    policy(reorthogonalize)
    check_bool("offload_basis", offload_basis)
    check_bool("check_symmetric", check_symmetric)
    check_seed("seed", seed)


def check_options(
    *,
    num_steps: int = DEFAULT_NUM_STEPS,
    num_probes: int | None = None,
    seed: int | np.random.Generator | None = None,
    probe: str = "rademacher",
    reorthogonalize: str = "full",
    offload_basis: bool = False,
    probe_batch_size: int | None = None,
    check_symmetric: bool = False,
    tol: float | None = None,
    max_matvecs: int | None = None,
    max_memory: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    callback: Callable[[LanczosStep], Any] | None = None,
) -> None:
    """Run the checks of `density` that need no operator, for a call to be made later.

    Raises what `density` raises for the same arguments, except what depends on
    the operator (its size caps `num_steps`; `max_memory` is compared with
    its estimate then).

    Examples
    --------
    >>> from slq._density import check_options
    >>> check_options(num_steps=30, probe="gaussian")
    >>> check_options(num_steps=0)
    Traceback (most recent call last):
    ...
    ValueError: num_steps must be >= 1, got 0
    """
    m = check_positive_int("num_steps", num_steps)
    _check_settings(probe, reorthogonalize, offload_basis, check_symmetric, seed)
    if checkpoint is not None:
        check_path("checkpoint", checkpoint)
    check_optional_bool("progress", progress)
    check_callable("callback", callback)
    _plan(m, num_probes, probe_batch_size, tol, max_matvecs)
    if max_memory is not None:
        check_positive_int("max_memory", max_memory)


def _check_traceable(store: Checkpoint | None, tol: float | None, max_matvecs: int | None) -> None:
    """Refuse what needs the host between batches: checkpoints, `tol`, `max_matvecs`."""
    if store is not None or tol is not None or max_matvecs is not None:
        msg = (
            "slq.density runs inside jax.jit (a traced operator) only without checkpoint, "
            "tol and max_matvecs: they decide on the host between batches"
        )
        raise TypeError(msg)


def _traced(
    op: Any, results: list[LanczosResult], plan: _Plan, m: int, run: tuple[int, str, str]
) -> Any:
    """Run the remaining batches traced and return the result as arrays: a `TracedDensity`.

    Typed Any: `density` keeps its eager result type for every caller outside a
    transformation; inside one, its docstring says what it returns.
    """
    entropy, probe, reorthogonalize = run
    n = op.shape[0]
    for start in range(plan.batch, plan.num_probes, plan.batch):
        batch = range(start, min(start + plan.batch, plan.num_probes))
        probes = draw_probes(probe, n, batch, entropy)
        rows = prepare_start(op.xp.asarray(probes, dtype=op.dtype, device=op.device), op)
        chosen = policy(reorthogonalize)
        results.append(run_batch(op, rows, m, chosen, False, probe_offset=start))
    logger.info("density: n=%d, %d probes x %d steps, traced", n, plan.num_probes, m)
    return traced_density(op, results, n, entropy)


def _settings(
    op: Any, m: int, entropy: int, probe: str, reorthogonalize: str, batch: int
) -> dict[str, Any]:
    """Return the settings that make a checkpoint's batches this run's batches."""
    return {
        "dim": op.shape[0],
        "dtype": _dtype_key(op.dtype),
        "num_steps": m,
        "seed": entropy,
        "probe": probe,
        "reorthogonalize": reorthogonalize,
        "probe_batch_size": batch,
    }


def _dtype_key(dtype: Any) -> str:
    """Return a library-independent name such as "float32" (numpy, torch, JAX and TF dtypes)."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        name = getattr(dtype, "name", None)
        return name if isinstance(name, str) else str(dtype).rsplit(".", 1)[-1]


def _resumable(
    store: Checkpoint | None, op: Any, settings: dict[str, Any], plan: _Plan
) -> list[LanczosResult]:
    """Return the checkpoint's batches that this plan would run the same way."""
    if store is None:
        return []
    results = []
    for i, result in enumerate(store.resume(op, settings)):
        expected = min(plan.batch, plan.num_probes - i * plan.batch)
        if expected <= 0 or result.alpha.shape[0] != expected:
            break  # the previous call ran a shorter last batch: redo it
        results.append(result)
    return results


def _converged(results: list[LanczosResult], tol: float | None, n: int) -> bool:
    probes = sum(r.alpha.shape[0] for r in results)
    return tol is not None and probes >= _MIN_ADAPTIVE_PROBES and _l1_stderr(results, n) <= tol


_MIN_ADAPTIVE_PROBES = 4
_ADAPTIVE_MAX_PROBES = 1000


class _Plan(NamedTuple):
    num_probes: int
    batch: int
    max_matvecs: float


def _plan(
    m: int,
    num_probes: int | None,
    batch: int | None,
    tol: float | None,
    max_matvecs: int | None,
) -> _Plan:
    """Check the probe-count options and return how many probes to run, how many at once."""
    tol = None if tol is None else check_positive_float("tol", tol)
    default = DEFAULT_NUM_PROBES if tol is None else _ADAPTIVE_MAX_PROBES
    k = default if num_probes is None else check_positive_int("num_probes", num_probes)
    default_batch = k if tol is None else _MIN_ADAPTIVE_PROBES
    b = default_batch if batch is None else check_positive_int("probe_batch_size", batch)
    budget = np.inf if max_matvecs is None else check_positive_int("max_matvecs", max_matvecs)
    if min(b, k) * m > budget:
        msg = (
            f"max_matvecs={max_matvecs} cannot pay for one batch of {min(b, k)} probes x "
            f"{m} steps = {min(b, k) * m} products: raise it, or lower probe_batch_size "
            "or num_steps"
        )
        raise ValueError(msg)
    return _Plan(k, b, budget)


def _l1_stderr(results: list[LanczosResult], n: int) -> float:
    """Return ∫ stderr(t) dt of the smoothed density of the probes run so far."""
    alpha, beta = _pad(results)
    partial = SpectralDensity(alpha, beta, dim=n)
    t = partial.grid()
    return float(np.trapezoid(partial.stderr(t), t))
