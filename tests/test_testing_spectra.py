"""slq.testing's matrices against numpy.linalg.eigvalsh, its operators against their dense form."""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import numpy as np
import pytest
from helpers import Backend, assert_close, to_numpy_any

import slq
from slq import testing

STRUCTURED = ("householder", "hadamard", "kronecker")


def _dense_form(op: slq.LinearOperator, backend: Backend | None = None) -> np.ndarray:
    n = op.shape[0]
    eye = np.eye(n) if backend is None else backend.asarray(np.eye(n))
    return to_numpy_any(op.matmat(eye))


def _ks(eigenvalues: np.ndarray, law: testing.SpectralLaw) -> float:
    """Kolmogorov distance between the empirical distribution of `eigenvalues` and `law`."""
    n = eigenvalues.size
    cdf = law.cdf(np.sort(eigenvalues))
    steps = np.arange(n + 1) / n
    return float(max(np.max(np.abs(cdf - steps[1:])), np.max(np.abs(cdf - steps[:-1]))))


def test_a_dense_matrix_has_exactly_the_prescribed_eigenvalues_in_any_order() -> None:
    lam = np.array([3.0, -1.0, 2.0, 2.0, 0.0, 10.0])
    problem = testing.matrix_with_spectrum(lam, seed=4)
    a = problem.matrix
    np.testing.assert_array_equal(a, a.T)
    np.testing.assert_array_equal(problem.eigenvalues, np.sort(lam))
    assert_close(np.linalg.eigvalsh(a), np.sort(lam))
    assert (problem.name, problem.dim, problem.law) == ("prescribed spectrum", 6, None)


def test_the_same_seed_gives_the_same_matrix_and_the_input_is_not_changed() -> None:
    lam = np.linspace(0.0, 1.0, 16)
    before = lam.copy()
    for structure in ("dense", *STRUCTURED):
        one = testing.matrix_with_spectrum(lam, seed=7, structure=structure).matrix
        two = testing.matrix_with_spectrum(lam, seed=7, structure=structure).matrix
        other = testing.matrix_with_spectrum(lam, seed=8, structure=structure).matrix
        if structure != "dense":
            one, two, other = (_dense_form(op) for op in (one, two, other))
        np.testing.assert_array_equal(one, two)
        assert not np.array_equal(one, other)
    np.testing.assert_array_equal(lam, before)


@pytest.mark.parametrize("structure", STRUCTURED)
def test_a_structured_operator_is_its_dense_form_in_every_library(
    structure: str, backend: Backend
) -> None:
    lam = np.linspace(-2.0, 5.0, 32)
    problem = testing.matrix_with_spectrum(
        lam, seed=3, structure=structure, like=backend.asarray(np.zeros(1))
    )
    op = problem.matrix
    assert op.shape == (32, 32) and op.xp is backend.xp
    dense = _dense_form(op, backend)
    assert_close(dense, dense.T, scale=5.0)
    assert_close(np.linalg.eigvalsh((dense + dense.T) / 2), lam)
    v = backend.asarray(np.arange(32.0))
    assert_close(op.matvec(v), dense @ np.arange(32.0), scale=5.0 * 32 * 31)
    np.testing.assert_array_equal(to_numpy_any(op.matvec(v)), to_numpy_any(op.matvec(v)))


@pytest.mark.parametrize(("structure", "n"), [("hadamard", 256), ("kronecker", 300)])
def test_the_hadamard_and_kronecker_rotations_spread_every_coordinate(
    structure: str, n: int
) -> None:
    # Householder's Q differs from I by rank 8; these Q must be dense.
    dense = _dense_form(
        testing.matrix_with_spectrum(np.arange(n), seed=0, structure=structure).matrix
    )
    assert np.abs(np.diag(dense) - np.arange(n)).max() > 1.0
    assert np.count_nonzero(np.abs(dense) > 1e-12) > 0.9 * n * n


def test_a_kronecker_rotation_of_several_factors_is_orthogonal_and_its_transpose() -> None:
    from slq.testing._structured import KroneckerRotation, kronecker_factor_sizes

    rng = np.random.default_rng(0)
    factors = [np.linalg.qr(rng.standard_normal((size, size)))[0] for size in (5, 3, 2)]
    rotation = KroneckerRotation(factors, 30, rng, np.zeros(1))
    q, qt = rotation.apply(np.eye(30)), rotation.apply_transpose(np.eye(30))
    assert_close(q.T @ q, np.eye(30), scale=30.0)
    assert_close(qt, q.T, scale=30.0)
    assert kronecker_factor_sizes(10**6) == [250, 250, 16]
    assert kronecker_factor_sizes(2 * 3 * 5 * 7 * 11 * 13, limit=30) == [26, 21, 11, 5]
    assert kronecker_factor_sizes(1) == [1] and kronecker_factor_sizes(2 * 257) is None
    with pytest.raises(ValueError, match="prime factors are all <= 256, got n = 514"):
        testing.matrix_with_spectrum(np.zeros(514), structure="kronecker")


def test_slq_recovers_a_structured_operator_s_spectrum() -> None:
    problem = testing.spiked_matrix(
        1024, testing.semicircle(1.0), [(4.0, 1), (6.0, 2)], seed=0, structure="hadamard"
    )
    dos = slq.density(problem.matrix, num_steps=40, num_probes=2, seed=0)
    assert dos.lambda_max == pytest.approx(6.0, abs=1e-8)
    assert dos.num_matvecs == 80


def test_a_float32_like_gives_float32_vectors() -> None:
    import torch

    problem = testing.matrix_with_spectrum([1.0, 2.0], seed=0, like=torch.zeros(1))
    assert problem.matrix.dtype == torch.float32
    assert problem.eigenvalues.dtype == np.float64


def test_a_spiked_model_has_the_bulk_s_quantiles_and_its_outliers() -> None:
    bulk = testing.marchenko_pastur(0.5)
    lam = testing.spiked_eigenvalues(100, bulk, [(10.0, 2), (20.0, 1)])
    np.testing.assert_array_equal(lam[-3:], [10.0, 10.0, 20.0])
    np.testing.assert_array_equal(lam[:97], bulk.quantiles(97))
    problem = testing.spiked_matrix(100, bulk, [(10.0, 2), (20.0, 1)], seed=0)
    assert problem.law is bulk
    assert_close(np.linalg.eigvalsh(problem.matrix), lam, scale=20.0)


def test_goe_and_wishart_have_their_eigenvalues_and_follow_their_law() -> None:
    n = 400
    # Rigidity: eigenvalues sit within ~log(n)/n of their quantiles (Erdős–Yau–Yin 2012).
    bound = 4.0 * np.log(n) / n
    for problem in (testing.goe(n, seed=0), testing.wishart(n, 0.5, seed=0)):
        np.testing.assert_array_equal(problem.eigenvalues, np.linalg.eigvalsh(problem.matrix))
        assert _ks(problem.eigenvalues, problem.law) < bound, problem.name
    assert testing.wishart(n, 0.3, seed=0).law.name.startswith("marchenko_pastur(ratio=0.3")


def test_random_matrices_come_in_the_library_of_like(backend: Backend) -> None:
    problem = testing.goe(20, seed=1, like=backend.asarray(np.zeros(1)))
    assert slq.aslinearoperator(problem.matrix).xp is backend.xp
    np.testing.assert_array_equal(to_numpy_any(problem.matrix), testing.goe(20, seed=1).matrix)


def test_a_random_regular_graph_is_simple_regular_and_follows_kesten_mckay() -> None:
    n, d = 600, 4
    problem = testing.random_regular_graph(n, d, seed=0)
    a = problem.matrix.toarray()
    np.testing.assert_array_equal(a, a.T)
    assert set(np.unique(a)) == {0.0, 1.0} and not np.diag(a).any()
    np.testing.assert_array_equal(a.sum(axis=0), np.full(n, d))
    np.testing.assert_array_equal(problem.eigenvalues, np.linalg.eigvalsh(a))
    assert problem.eigenvalues[-1] == pytest.approx(d)
    assert _ks(problem.eigenvalues, problem.law) < 4.0 * np.log(n) / n + 1.0 / n
    again = testing.random_regular_graph(n, d, seed=0).matrix
    assert (again != problem.matrix).nnz == 0


@pytest.mark.parametrize(
    "problem",
    [
        testing.path_laplacian(17),
        testing.cycle_laplacian(12),
        testing.grid_laplacian((4, 5)),
        testing.grid_laplacian((3, 2, 4)),
        testing.torus_laplacian((3, 5)),
        testing.torus_laplacian((3, 3, 4)),
    ],
    ids=lambda p: p.name,
)
def test_each_laplacian_has_its_closed_form_eigenvalues(problem: testing.Problem) -> None:
    a = problem.matrix.toarray()
    np.testing.assert_array_equal(a, a.T)
    np.testing.assert_array_equal(a.sum(axis=1), np.zeros(problem.dim))
    assert_close(np.linalg.eigvalsh(a), problem.eigenvalues, scale=4.0 * a.ndim)
    one_axis = problem.name.startswith(("path", "cycle"))
    assert (problem.law is not None) == one_axis


def test_a_path_laplacian_follows_the_arcsine_law() -> None:
    # Its eigenvalues sit at the law's k/n quantiles, k = 0, …, n − 1: distance 1/n.
    problem = testing.path_laplacian(1000)
    assert _ks(problem.eigenvalues, problem.law) == pytest.approx(1.0 / 1000)


class Bad(NamedTuple):
    """A call of slq.testing.`target` with `argument` set to `value`, and its error."""

    target: str
    argument: str
    value: Any
    error: type[Exception]
    match: str


VALID: dict[str, dict[str, Any]] = {
    "matrix_with_spectrum": {"eigenvalues": [1.0, 2.0], "seed": 0},
    "spiked_eigenvalues": {"n": 5, "bulk": testing.uniform(0, 1), "outliers": [(3.0, 1)]},
    "spiked_matrix": {"n": 5, "bulk": testing.uniform(0, 1), "outliers": [(3.0, 1)]},
    "goe": {"n": 4},
    "wishart": {"n": 4, "ratio": 0.5},
    "random_regular_graph": {"n": 6, "degree": 3},
    "path_laplacian": {"n": 3},
    "cycle_laplacian": {"n": 3},
    "grid_laplacian": {"shape": (2, 2)},
    "torus_laplacian": {"shape": (3, 3)},
    "semicircle": {},
    "marchenko_pastur": {"ratio": 0.5},
    "kesten_mckay": {"degree": 3},
    "uniform": {"low": 0.0, "high": 1.0},
    "power_law": {"exponent": 2.0, "low": 1.0, "high": 2.0},
    "arcsine": {},
}

# fmt: off
TABLE = [
    Bad("matrix_with_spectrum", "eigenvalues", [1.0, np.inf], ValueError, "must be finite"),
    Bad("matrix_with_spectrum", "eigenvalues", [], ValueError, "non-empty 1-D"),
    Bad("matrix_with_spectrum", "eigenvalues", np.eye(2), ValueError, "non-empty 1-D"),
    Bad("matrix_with_spectrum", "eigenvalues", ["a"], TypeError, "eigenvalues must be real"),
    Bad("matrix_with_spectrum", "eigenvalues", np.zeros(9000), ValueError, "n <= 8192"),
    Bad("matrix_with_spectrum", "seed", -1, ValueError, "seed must be >= 0"),
    Bad("matrix_with_spectrum", "like", 3, TypeError, "like must be an array"),
    Bad("matrix_with_spectrum", "like", np.zeros(1, dtype=int), TypeError, "like dtype must"),
    Bad("matrix_with_spectrum", "structure", "dct", ValueError, "structure must be one of"),
    Bad("matrix_with_spectrum", "structure", 3, TypeError, "structure must be one of"),
    Bad("spiked_eigenvalues", "n", 0, ValueError, "n must be >= 1"),
    Bad("spiked_eigenvalues", "bulk", "semicircle", TypeError, "bulk must be a SpectralLaw"),
    Bad("spiked_eigenvalues", "outliers", [(3.0, 5)], ValueError, "sum to less than n = 5"),
    Bad("spiked_eigenvalues", "outliers", [(3.0,)], ValueError, r"\(value, multiplicity\)"),
    Bad("spiked_eigenvalues", "outliers", [(np.nan, 1)], ValueError, "values must be finite"),
    Bad("spiked_eigenvalues", "outliers", 3, TypeError, "outliers must be a sequence"),
    Bad("spiked_matrix", "n", 2.5, TypeError, "n must be an integer"),
    Bad("spiked_matrix", "bulk", None, TypeError, "bulk must be a SpectralLaw"),
    Bad("spiked_matrix", "outliers", [(3.0, 0)], ValueError, "outlier multiplicity must be >= 1"),
    Bad("spiked_matrix", "seed", "0", TypeError, "seed must be a non-negative int"),
    Bad("spiked_matrix", "like", [0.0], TypeError, "like must be an array"),
    Bad("spiked_matrix", "structure", "hadamard", ValueError, "n a power of two, got n = 5"),
    Bad("goe", "n", 0, ValueError, "n must be >= 1"),
    Bad("goe", "seed", 1.5, TypeError, "seed must be"),
    Bad("goe", "like", "numpy", TypeError, "like must be an array"),
    Bad("wishart", "n", -3, ValueError, "n must be >= 1"),
    Bad("wishart", "ratio", 2.0, ValueError, r"ratio must be in \(0, 1\]"),
    Bad("wishart", "seed", -2, ValueError, "seed must be >= 0"),
    Bad("wishart", "like", 1.0, TypeError, "like must be an array"),
    Bad("random_regular_graph", "n", 5, ValueError, "n·d even"),
    Bad("random_regular_graph", "degree", 6, ValueError, "d < n"),
    Bad("random_regular_graph", "degree", 2, ValueError, "degree must be >= 3"),
    Bad("random_regular_graph", "seed", "x", TypeError, "seed must be"),
    Bad("path_laplacian", "n", 0, ValueError, "n must be >= 1"),
    Bad("cycle_laplacian", "n", 2, ValueError, "a cycle needs n >= 3"),
    Bad("grid_laplacian", "shape", (), ValueError, "at least one axis"),
    Bad("grid_laplacian", "shape", 4, TypeError, "shape must be a sequence"),
    Bad("torus_laplacian", "shape", (3, 2), ValueError, "at least 3 vertices"),
    Bad("semicircle", "radius", 0.0, ValueError, "radius must be"),
    Bad("marchenko_pastur", "ratio", "1", TypeError, "ratio must be a real number"),
    Bad("marchenko_pastur", "variance", -1.0, ValueError, "variance must be"),
    Bad("kesten_mckay", "degree", 2, ValueError, "degree must be >= 3"),
    Bad("uniform", "low", 2.0, ValueError, "low < high"),
    Bad("uniform", "high", np.nan, ValueError, "finite"),
    Bad("power_law", "exponent", np.inf, ValueError, "exponent must be finite"),
    Bad("power_law", "low", -1.0, ValueError, "low must be > 0"),
    Bad("power_law", "high", 0.5, ValueError, "low < high"),
    Bad("arcsine", "low", 5.0, ValueError, "low < high"),
    Bad("arcsine", "high", "4", TypeError, "real number"),
]
# fmt: on


@pytest.mark.parametrize("bad", TABLE, ids=lambda b: f"{b.target}-{b.argument}={b.value!r}")
def test_a_bad_argument_is_refused_by_name(bad: Bad) -> None:
    arguments = {**VALID[bad.target], bad.argument: bad.value}
    with pytest.raises(bad.error, match=bad.match):
        getattr(testing, bad.target)(**arguments)


def test_the_valid_arguments_are_accepted() -> None:
    for name, arguments in VALID.items():
        assert getattr(testing, name)(**arguments) is not None


def test_every_parameter_of_these_functions_has_a_bad_value() -> None:
    # The makers of matrices and laws (this file's); the metrics are tested with theirs.
    mine = {"_prescribed", "_random_matrices", "_graphs", "_laws"}
    functions = {
        name: obj
        for name in testing.__all__
        if inspect.isfunction(obj := getattr(testing, name))
        and obj.__module__.rsplit(".", 1)[-1] in mine
    }
    assert set(functions) == set(VALID)
    wanted = {(name, p) for name, f in functions.items() for p in inspect.signature(f).parameters}
    assert wanted == {(bad.target, bad.argument) for bad in TABLE}
