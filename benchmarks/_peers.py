"""slq and its peers on a ``peers.py`` problem, each through its documented API.

Each tool has a ``prepare(problem, k, m, seed)`` that builds what the tool
builds (its operator, its planning, its compiled program) and returns ``run()``,
one spectral-density estimate of k probes x m Lanczos steps. ``peers.py`` times
``prepare`` plus the first ``run`` (the set-up included) and, for JAX tools, a
second ``run`` (the repeat call). Every tool's output is converted to per-probe
Ritz nodes and Gauss weights, so one smoothing serves them all.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from _peer_problems import Problem
from scipy.linalg import eigh_tridiagonal


class Outcome(NamedTuple):
    nodes: np.ndarray  # (k, m) Ritz values, one row per probe
    weights: np.ndarray  # (k, m) Gauss weights, each row summing to about 1
    products: int  # operator products made by run(), reported by the tool or counted


class Tool(NamedTuple):
    name: str
    module: str  # the import that must succeed, or the tool is "not installed"
    form: str  # the problem's native form the tool takes: "numpy", "torch" or "jax"
    kinds: tuple[str, ...]  # problem kinds the tool can run
    probes: str  # its probe distribution
    reorth: str  # its reorthogonalisation
    prepare: Callable[[Problem, int, int, int], Callable[[], Outcome]]

    @property
    def is_slq(self) -> bool:
        return self.name.startswith("slq")

    def missing(self) -> bool:
        return importlib.util.find_spec(self.module) is None


def native(problem: Problem, form: str) -> Any:
    """The problem in a framework's own types (built once, outside any timing)."""
    if form not in problem.forms:
        problem.forms[form] = FORMS[form](problem)
    return problem.forms[form]


def torch_form(problem: Problem) -> Any:
    import torch

    a = problem.matrix
    if problem.kind == "network":
        return problem.model
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a)
    return torch.sparse_csr_tensor(
        torch.from_numpy(a.indptr.astype(np.int64)),
        torch.from_numpy(a.indices.astype(np.int64)),
        torch.from_numpy(a.data),
        size=a.shape,
    )


def jax_form(problem: Problem) -> Any:
    import jax.numpy as jnp
    from _jax_twin import twin
    from jax.experimental import sparse

    if problem.kind == "network":
        return twin(problem.model, problem.data)
    if isinstance(problem.matrix, np.ndarray):
        return jnp.asarray(problem.matrix)
    return sparse.BCOO.from_scipy_sparse(problem.matrix)


FORMS = {"numpy": lambda p: p.matrix, "torch": torch_form, "jax": jax_form}


def gauss_rule(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the Gauss rule of a Jacobi matrix (Golub & Welsch 1969)."""
    nodes, vectors = eigh_tridiagonal(alpha, beta)
    return nodes, vectors[0] ** 2


def prepare_slq(problem: Problem, k: int, m: int, seed: int) -> Callable[[], Outcome]:
    import slq
    from slq import adapters

    if problem.kind == "matrix":
        op = slq.aslinearoperator(native(problem, "numpy"))
    else:
        op = adapters.torch_hessian(problem.model, problem.data, batchnorm="eval")
    return slq_run(op, k, m, seed)


def prepare_slq_jax(problem: Problem, k: int, m: int, seed: int) -> Callable[[], Outcome]:
    import jax.numpy as jnp

    import slq
    from slq import adapters

    form = native(problem, "jax")
    if problem.kind == "network":
        loss_fn, params, batch = form
        op = adapters.jax_hessian(loss_fn, params, batch)
    elif isinstance(form, jnp.ndarray):
        op = slq.aslinearoperator(form)
    else:
        op = slq.aslinearoperator(form.__matmul__, shape=form.shape, like=jnp.zeros(1))
    return slq_run(op, k, m, seed)


def slq_run(op: Any, k: int, m: int, seed: int) -> Callable[[], Outcome]:
    import slq

    def run() -> Outcome:
        dos = slq.density(op, num_steps=m, num_probes=k, seed=seed)
        return Outcome(np.asarray(dos.nodes), np.asarray(dos.weights), int(dos.num_matvecs))

    return run


def textbook_lanczos(matvec: Callable, v: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """m Lanczos steps from v with classical Gram–Schmidt twice (Golub & Van Loan, Alg. 10.1.1)."""
    basis, alpha, beta = np.empty((m, v.size)), np.empty(m), np.empty(m - 1)
    q = v / np.linalg.norm(v)
    for j in range(m):
        basis[j] = q
        w = matvec(q)
        alpha[j] = q @ w
        for _ in range(2):
            w -= (basis[: j + 1] @ w) @ basis[: j + 1]
        if j < m - 1:
            beta[j] = np.linalg.norm(w)
            q = w / beta[j]
    return alpha, beta


def prepare_textbook(problem: Problem, k: int, m: int, seed: int) -> Callable[[], Outcome]:
    a = native(problem, "numpy")

    def run() -> Outcome:
        probes = np.random.default_rng(seed).choice([-1.0, 1.0], size=(k, a.shape[0]))
        rules = [gauss_rule(*textbook_lanczos(a.__matmul__, v, m)) for v in probes]
        return Outcome(np.stack([r[0] for r in rules]), np.stack([r[1] for r in rules]), k * m)

    return run


def prepare_pyhessian(problem: Problem, k: int, m: int, seed: int) -> Callable[[], Outcome]:
    import torch
    from torch import nn

    # The package re-exports the class `hessian` under its module's name: fetch the module.
    ph = importlib.import_module("pyhessian.hessian")
    h = ph.hessian(problem.model, nn.CrossEntropyLoss(), data=problem.data, cuda=False)

    def run() -> Outcome:
        count, product, eig = [0], ph.hessian_vector_product, getattr(torch, "eig", None)

        def counted(*args: Any) -> Any:
            count[0] += 1
            return product(*args)

        ph.hessian_vector_product, torch.eig = counted, eigh_as_eig
        try:
            torch.manual_seed(seed)  # PyHessian draws its probes from torch's global RNG
            nodes, weights = h.density(iter=m, n_v=k)
        finally:
            ph.hessian_vector_product, torch.eig = product, eig
        return Outcome(np.array(nodes), np.array(weights), count[0])

    return run


def eigh_as_eig(t: Any, eigenvectors: bool = True) -> tuple[Any, Any]:
    """PyHessian 0.1 calls torch.eig, which torch removed: an eigh of its symmetric T instead."""
    import torch

    values, vectors = torch.linalg.eigh(t)
    return torch.stack([values, torch.zeros_like(values)], dim=1), vectors


def prepare_eigenthings(problem: Problem, k: int, m: int, seed: int) -> Callable[[], Outcome]:
    import torch
    from hessian_eigenthings.algorithms.spectral_density import spectral_density
    from hessian_eigenthings.operators.base import LambdaOperator
    from hessian_eigenthings.operators.hessian import HessianOperator

    if problem.kind == "network":

        def loss_fn(model: Any, batch: Any) -> Any:
            return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])

        op = HessianOperator(problem.model, [problem.data], loss_fn)
    else:
        a = native(problem, "torch")
        op = LambdaOperator(a.__matmul__, a.shape[0], dtype=torch.float64)
    count, matvec = [0], op.matvec

    def counted(v: Any) -> Any:
        count[0] += 1
        return matvec(v)

    op.matvec = counted

    def run() -> Outcome:
        count[0] = 0
        result = spectral_density(op, num_runs=k, lanczos_steps=m, seed=seed)
        return Outcome(result.raw_eigenvalues.numpy(), result.raw_weights.numpy(), count[0])

    return run


def torch_matrix_operator(a: Any) -> Any:
    """A curvlinops operator around a torch (dense or sparse CSR) matrix."""
    import torch
    from curvlinops._torch_base import PyTorchLinearOperator

    class TorchMatrix(PyTorchLinearOperator):
        SELF_ADJOINT = True

        def __init__(self) -> None:
            super().__init__([(a.shape[1],)], [(a.shape[0],)])

        def _matmat(self, x: list[Any]) -> list[Any]:
            return [a @ x[0]]

        @property
        def device(self) -> Any:
            return torch.device("cpu")

        @property
        def dtype(self) -> Any:
            return a.dtype

    return TorchMatrix()


def prepare_curvlinops(problem: Problem, k: int, m: int, seed: int) -> Callable[[], Outcome]:
    import torch
    from curvlinops import HessianLinearOperator
    from curvlinops.papyan2020traces import spectrum

    if problem.kind == "network":
        params = [p for p in problem.model.parameters() if p.requires_grad]
        loss = torch.nn.CrossEntropyLoss()
        op = HessianLinearOperator(problem.model, loss, params, [problem.data])
    else:
        op = torch_matrix_operator(native(problem, "torch"))
    count, matmat = [0], op._matmat

    def counted(x: list[Any]) -> list[Any]:
        count[0] += x[0].shape[-1]
        return matmat(x)

    op._matmat = counted

    def run() -> Outcome:
        count[0], rules, fast_lanczos = 0, [], spectrum.fast_lanczos

        def recorded(*args: Any, **kwargs: Any) -> Any:
            rules.append(fast_lanczos(*args, **kwargs))
            return rules[-1]

        spectrum.fast_lanczos = recorded  # records each probe's Ritz values and vectors
        try:
            torch.manual_seed(seed)  # curvlinops draws its probes from torch's global RNG
            spectrum.lanczos_approximate_spectrum(op, m, num_repeats=k)
        finally:
            spectrum.fast_lanczos = fast_lanczos
        nodes = np.stack([r[0].numpy() for r in rules])
        return Outcome(nodes, np.stack([r[1][0].numpy() ** 2 for r in rules]), count[0])

    return run


def prepare_matfree(problem: Problem, k: int, m: int, seed: int) -> Callable[[], Outcome]:
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from matfree import decomp, stochtrace

    form = native(problem, "jax")
    if problem.kind == "network":
        loss_fn, params, batch = form
        flat, unravel = ravel_pytree(params)

        def matvec(v: Any, flat: Any, batch: Any) -> Any:  # jvp(grad), as matfree's docs do
            gradient = jax.grad(lambda f: loss_fn(unravel(f), batch))
            return jax.jvp(gradient, (flat,), (v,))[1]

        args = (flat, batch)
    else:
        flat, args = jnp.zeros(form.shape[0]), (form,)

        def matvec(v: Any, a: Any) -> Any:
            return a @ v

    n, tridiag = flat.size, decomp.tridiag_sym(m, reortho="full")

    # The weights, data or matrix are arguments, not constants folded into the program.
    @jax.jit
    def quadrature(key: Any, *args: Any) -> tuple[Any, Any]:
        def one(v: Any) -> tuple[Any, Any]:
            length = jnp.linalg.norm(v)
            _, t, *_ = tridiag(matvec, v / length, *args)
            nodes, vectors = jnp.linalg.eigh(t)
            return nodes, length**2 * vectors[0] ** 2 / n

        return jax.vmap(one)(stochtrace.sampler_signs(flat, num=k)(key))

    def run() -> Outcome:
        nodes, weights = jax.block_until_ready(quadrature(jax.random.key(seed), *args))
        return Outcome(np.asarray(nodes), np.asarray(weights), k * m)  # m per probe, by design

    return run


TOOLS = (
    Tool("slq", "slq", "numpy", ("matrix", "network"), "Rademacher", "full", prepare_slq),
    Tool("slq (JAX)", "jax", "jax", ("matrix", "network"), "Rademacher", "full", prepare_slq_jax),
    Tool("PyHessian", "pyhessian", "torch", ("network",), "Rademacher", "full", prepare_pyhessian),
    Tool(
        "hessian-eigenthings",
        "hessian_eigenthings",
        "torch",
        ("matrix", "network"),
        "Rademacher",
        "full",
        prepare_eigenthings,
    ),
    Tool(
        "curvlinops",
        "curvlinops",
        "torch",
        ("matrix", "network"),
        "Gaussian",
        "none (not offered)",
        prepare_curvlinops,
    ),
    Tool("matfree", "matfree", "jax", ("matrix", "network"), "Rademacher", "full", prepare_matfree),
    Tool("numpy textbook", "numpy", "numpy", ("matrix",), "Rademacher", "full", prepare_textbook),
)
