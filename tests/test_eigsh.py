"""`eigsh` (thick-restart Lanczos) against dense eigendecompositions and SciPy."""

from __future__ import annotations

import importlib
import logging

import numpy as np
import pytest
from helpers import Backend, CheckedOperator, namespace, need, symmetric_with_spectrum, to_numpy

from slq import aslinearoperator
from slq._eigsh import EigshResult, eigsh
from slq._probes import draw_probes, root_seed

eigsh_module = importlib.import_module("slq._eigsh")
array_api_backend = importlib.import_module("slq._backends.array_api")

WHICH = ("LA", "SA", "LM", "BE")

# One size for every backend test: JAX compiles once per shape.
N = 60
# A bulk in [-1, 1] and outliers of distinct magnitudes, so that every `which` is unambiguous.
SPECTRUM = np.concatenate([np.linspace(-1.0, 1.0, N - 6), [-5.0, -3.5, 2.2, 3.0, 4.0, 6.0]])


def wanted(eigenvalues: np.ndarray, k: int, which: str) -> np.ndarray:
    """The indices of the k wanted eigenvalues of the ascending `eigenvalues`, as SciPy's."""
    n = eigenvalues.size
    if which == "LA":
        return np.arange(n - k, n)
    if which == "SA":
        return np.arange(k)
    if which == "LM":
        return np.sort(np.argsort(-np.abs(eigenvalues))[:k])
    return np.concatenate([np.arange(k // 2), np.arange(n - (k - k // 2), n)])


def check_against_dense(result: EigshResult, a: np.ndarray, k: int, which: str, rtol: float):
    """Values, vectors (up to sign), honest residuals and error bounds against eigh."""
    lam, u = np.linalg.eigh(a)
    scale = np.abs(lam).max()
    index = wanted(lam, k, which)
    np.testing.assert_allclose(result.eigenvalues, lam[index], rtol=0, atol=rtol * scale)
    x = to_numpy(result.eigenvectors)
    assert x.shape == (a.shape[0], k)
    np.testing.assert_allclose(x.T @ x, np.eye(k), atol=100 * rtol)
    np.testing.assert_allclose(np.abs(np.sum(x * u[:, index], axis=0)), 1.0, atol=100 * rtol)
    explicit = np.linalg.norm(a @ x - x * result.eigenvalues, axis=0)
    np.testing.assert_allclose(result.residual_norms, explicit, rtol=1e-3, atol=rtol * scale)
    # Parlett 1998, Thm 4.5.1: an eigenvalue within ‖r‖ of θ (plus the rounding of r itself).
    assert np.all(np.abs(result.eigenvalues - lam[index]) <= result.residual_norms + rtol * scale)


@pytest.mark.parametrize("which", WHICH)
def test_matches_the_dense_eigendecomposition(backend: Backend, which: str) -> None:
    a = symmetric_with_spectrum(SPECTRUM, seed=0)
    op = CheckedOperator(backend.asarray(a))
    result = eigsh(op, k=3, which=which, seed=0)
    assert namespace(result.eigenvectors) is backend.xp
    check_against_dense(result, a, 3, which, rtol=1e-10)
    assert result.converged.dtype == bool and result.converged.all()
    assert result.eigenvalues.dtype == np.float64 and result.residual_norms.dtype == np.float64
    # Every product is counted: one matvec a step, and one matmat of k for the residuals.
    assert op.inputs == result.num_matvecs - 3 + 1


@pytest.mark.parametrize("which", WHICH)
def test_matches_scipy_on_a_sparse_matrix(which: str) -> None:
    sparse = pytest.importorskip("scipy.sparse")
    linalg = pytest.importorskip("scipy.sparse.linalg")
    rng = np.random.default_rng(1)
    s = sparse.random(200, 200, density=0.03, random_state=rng, format="csr")
    a = (s + s.T + sparse.diags(rng.standard_normal(200))).tocsr()
    expected = np.sort(linalg.eigsh(a, k=4, which=which, v0=np.ones(200))[0])
    result = eigsh(a, k=4, which=which, seed=0)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(result.eigenvalues, expected, rtol=0, atol=1e-10 * scale)
    assert result.converged.all() and isinstance(result.eigenvectors, np.ndarray)


def test_restarts_until_the_wanted_pairs_converge() -> None:
    # A uniform spectrum: the top is no outlier, and 12 vectors are far too few at once.
    a = symmetric_with_spectrum(np.linspace(0.0, 1.0, 300), seed=2)
    result = eigsh(a, k=5, num_vectors=12, seed=0)
    assert result.num_restarts > 0 and result.converged.all()
    check_against_dense(result, a, 5, "LA", rtol=1e-10)
    # Each restart keeps k + (p - k) // 2 = 8 vectors and adds at most 4 products.
    assert result.num_matvecs <= 12 + 4 * result.num_restarts + 5


def hessian_like(n: int = 200) -> np.ndarray:
    """A bulk near 0, a few large outliers and one negative eigenvalue, as in a loss Hessian."""
    bulk = 0.02 * np.random.default_rng(3).standard_normal(n - 5)
    return np.concatenate([bulk, [-0.4, 2.0, 5.0, 12.0, 40.0]])


@pytest.mark.parametrize(("k", "which"), [(1, "LA"), (5, "LA"), (1, "SA"), (2, "LM")])
def test_hessian_like_spectrum(k: int, which: str) -> None:
    a = symmetric_with_spectrum(hessian_like(), seed=4)
    result = eigsh(a, k=k, which=which, seed=0)
    check_against_dense(result, a, k, which, rtol=1e-10)
    if which == "SA":  # the most negative eigenvalue, next to the bulk
        assert result.eigenvalues[0] == pytest.approx(-0.4, abs=1e-10 * 40)


def test_top_eigenvalues_of_a_network_hessian() -> None:
    torch = need(Backend.TORCH)
    from torch_models import cross_entropy_batch_loss, data, dense_hessian, mlp

    from slq import adapters

    torch.manual_seed(0)
    model = mlp((4, 8, 3)).double()
    x, y = data(50)
    op = adapters.torch_hessian(model, (x, y), hvp="double-backward", reuse_primal=True)
    dense = dense_hessian(model, [(x, y)], cross_entropy_batch_loss).numpy()
    for which in ("LA", "SA"):
        result = eigsh(op, k=2, which=which, seed=0)
        assert isinstance(result.eigenvectors, torch.Tensor)
        check_against_dense(result, (dense + dense.T) / 2, 2, which, rtol=1e-9)


@pytest.mark.parametrize("block_rows", [None, 3])
def test_float32_on_torch(block_rows: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = need(Backend.TORCH)
    if block_rows is not None:  # float64 copies of 3 basis rows at a time
        monkeypatch.setattr(array_api_backend, "ACCUMULATION_ELEMENTS", block_rows * N)
    a = symmetric_with_spectrum(SPECTRUM, seed=0)
    result = eigsh(torch.asarray(a, dtype=torch.float32), k=3, seed=0)
    assert result.eigenvectors.dtype == torch.float32 and result.converged.all()
    lam = np.linalg.eigvalsh(a)
    eps32 = float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(result.eigenvalues, lam[-3:], rtol=0, atol=100 * eps32 * 6.0)
    # The default tolerance, eps^(2/3), is reachable in float32.
    assert np.all(result.residual_norms <= 10 * eps32 ** (2 / 3) * 6.0)
    assert np.all(np.abs(result.eigenvalues - lam[-3:]) <= result.residual_norms + 100 * eps32)


def test_multiple_eigenvalues_past_an_invariant_subspace() -> None:
    # One Krylov space holds one copy of each eigenvalue: it breaks down after 3 steps,
    # and only the fresh random directions find the other copies of 5.
    a = symmetric_with_spectrum(np.repeat([1.0, 2.0, 5.0], 20), seed=5)
    result = eigsh(a, k=4, seed=0)
    np.testing.assert_allclose(result.eigenvalues, [5.0] * 4, atol=1e-12)
    x = result.eigenvectors
    np.testing.assert_allclose(x.T @ x, np.eye(4), atol=1e-12)
    assert result.converged.all() and result.residual_norms.max() < 1e-12


def test_start_vector_in_an_eigenspace_breaks_down_at_once() -> None:
    a = np.diag(np.arange(1.0, 31.0))
    v0 = np.zeros(30)
    v0[3] = 1.0
    result = eigsh(a, k=2, v0=v0, seed=0)
    np.testing.assert_allclose(result.eigenvalues, [29.0, 30.0], atol=1e-12)


def test_small_operator_uses_the_whole_space() -> None:
    a = symmetric_with_spectrum(np.array([-2.0, 0.5, 1.0, 3.0, 7.0]), seed=6)
    result = eigsh(a, k=4, which="SA", seed=0)
    np.testing.assert_allclose(result.eigenvalues, [-2.0, 0.5, 1.0, 3.0], atol=1e-13)
    assert result.num_restarts == 0 and result.converged.all()


def test_seed_and_v0_give_the_same_run(backend: Backend) -> None:
    a = symmetric_with_spectrum(SPECTRUM, seed=0)
    v0 = draw_probes("gaussian", N, range(1), root_seed(7))[:, 0]
    from_seed = eigsh(a, k=3, seed=7)
    from_v0 = eigsh(backend.asarray(a), k=3, v0=backend.asarray(v0), seed=7)
    np.testing.assert_allclose(from_v0.eigenvalues, from_seed.eigenvalues, rtol=1e-12)
    assert from_v0.num_matvecs == from_seed.num_matvecs
    again = eigsh(a, k=3, seed=7)
    assert np.array_equal(again.eigenvalues, from_seed.eigenvalues)


def test_returns_unconverged_pairs_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    a = symmetric_with_spectrum(np.linspace(0.0, 1.0, 200), seed=2)
    with caplog.at_level(logging.WARNING, logger="slq"):
        result = eigsh(a, k=3, num_vectors=6, max_restarts=2, seed=0)
    assert not result.converged.all() and result.num_restarts == 2
    assert "did not converge" in caplog.text and "max_restarts=2" in caplog.text
    lam = np.linalg.eigvalsh(a)
    # Unconverged, but the residuals are honest: some eigenvalue lies within each of them.
    explicit = np.linalg.norm(
        a @ result.eigenvectors - result.eigenvectors * result.eigenvalues, axis=0
    )
    np.testing.assert_allclose(result.residual_norms, explicit, rtol=1e-10)
    distance = np.abs(result.eigenvalues[:, None] - lam[None, :]).min(axis=1)
    assert np.all(distance <= result.residual_norms)


def test_without_eigenvectors() -> None:
    a = symmetric_with_spectrum(SPECTRUM, seed=0)
    result = eigsh(a, k=2, seed=0, return_eigenvectors=False)
    assert result.eigenvectors is None and result.residual_norms.shape == (2,)
    np.testing.assert_allclose(result.eigenvalues, [4.0, 6.0], atol=1e-10)


def test_loose_tolerance_spends_fewer_products() -> None:
    a = symmetric_with_spectrum(np.linspace(0.0, 1.0, 200), seed=2)
    tight, loose = eigsh(a, k=2, seed=0), eigsh(a, k=2, seed=0, tol=1e-4)
    assert loose.num_matvecs < tight.num_matvecs and loose.converged.all()
    assert np.all(loose.residual_norms <= 1.1e-4)


def test_nan_from_the_operator_is_an_error() -> None:
    op = aslinearoperator(lambda v: np.full_like(v, np.nan), shape=(10, 10), dtype=np.float64)
    with pytest.raises(FloatingPointError, match="NaN or Inf"):
        eigsh(op, k=1, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 0}, ValueError, "k must be >= 1, got 0"),
        ({"k": 1.5}, TypeError, "k must be an integer"),
        ({"k": 10}, ValueError, r"k must be < n = 10 .*, got 10"),
        ({"k": 2, "which": "LR"}, ValueError, "which must be one of 'LA', 'SA', 'LM', 'BE'"),
        ({"k": 3, "num_vectors": 3}, ValueError, r"num_vectors must .* \(3, 10\], got 3"),
        ({"k": 3, "num_vectors": 11}, ValueError, r"num_vectors must .* \(3, 10\], got 11"),
        ({"k": 2, "tol": -1e-3}, ValueError, "tol must be finite and >= 0, got -0.001"),
        ({"k": 2, "tol": float("nan")}, ValueError, "tol must be finite"),
        ({"k": 2, "tol": "small"}, TypeError, "tol must be a real number"),
        ({"k": 2, "max_restarts": -1}, ValueError, "max_restarts must be >= 0, got -1"),
        ({"k": 2, "max_restarts": 2.0}, TypeError, "max_restarts must be an integer"),
        ({"k": 2, "v0": np.ones(9)}, ValueError, r"v0 must have shape \(10,\), got \(9,\)"),
        ({"k": 2, "v0": np.ones((10, 1))}, ValueError, r"v0 must have shape \(10,\)"),
        ({"k": 2, "v0": np.zeros(10)}, ValueError, "v0 must be finite and nonzero"),
        ({"k": 2, "v0": np.full(10, np.inf)}, ValueError, "v0 must be finite and nonzero"),
        ({"k": 2, "v0": np.arange(10)}, TypeError, "v0 dtype must be real floating"),
        (
            {"k": 2, "v0": [1.0] * 10},
            TypeError,
            "v0 must be a numpy array .the operator.s., got list",
        ),
        ({"k": 2, "seed": -1}, ValueError, "seed must be >= 0, got -1"),
    ],
)
def test_bad_input(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        eigsh(np.diag(np.arange(10.0)), **kwargs)


def test_v0_from_another_library() -> None:
    torch = need(Backend.TORCH)
    with pytest.raises(TypeError, match="v0 is a torch array but the operator's vectors"):
        eigsh(np.eye(10), k=2, v0=torch.ones(10, dtype=torch.float64))


@pytest.mark.parametrize("scale", [1e-300, 1e-170, 1e160, 1e300])
def test_every_representable_scale_gives_the_same_relative_answer(scale: float) -> None:
    lam = np.linspace(-1.0, 1.0, 100)
    result = eigsh(np.diag(lam) * scale, k=2, which="BE", seed=0)
    reference = eigsh(np.diag(lam), k=2, which="BE", seed=0)
    assert result.converged.all() and result.num_matvecs == reference.num_matvecs
    np.testing.assert_allclose(result.eigenvalues / scale, [-1.0, 1.0], rtol=1e-12)
    assert np.all(result.residual_norms / scale <= 1e-9)
