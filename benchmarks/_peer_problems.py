"""The six problems of ``peers.py``, each with its exact spectrum (cached on disk).

Two matrices with a spectrum known by construction, and four float64 networks on
scikit-learn's digits whose spectra come from ``eigvalsh`` of the dense Hessian,
computed once and cached under ``benchmarks/.peers-cache/`` (gitignored).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from slq import testing

CACHE = Path(__file__).resolve().parent / ".peers-cache"
log = logging.getLogger("peers")


@dataclass
class Problem:
    """One benchmark problem: a matrix (dense or sparse) or a torch network with its data."""

    name: str
    kind: str  # "matrix" or "network"
    eigenvalues: np.ndarray = field(repr=False)  # exact spectrum, ascending
    matrix: Any = None  # numpy array or scipy CSR (kind "matrix")
    model: Any = None  # torch nn.Sequential in float64, eval mode (kind "network")
    data: Any = None  # (x, y) torch tensors (kind "network")
    note: str = ""
    forms: dict[str, Any] = field(default_factory=dict, repr=False)  # see _peers.native

    @property
    def dim(self) -> int:
        return int(self.eigenvalues.size)


def dense_spiked(n: int, seed: int = 0) -> Problem:
    """Q diag(λ) Qᵀ: a semicircle bulk on [-1, 1] plus outliers 3, 5, 10, 20; Q Haar-random."""
    outliers = [(3.0, 1), (5.0, 1), (10.0, 1), (20.0, 1)]
    eigenvalues = testing.spiked_eigenvalues(n, testing.semicircle(1.0), outliers)
    # The exact quantiles of slq.testing (issue 19): a new cache name for the new matrix.
    path = CACHE / f"dense_spiked_{n}_{seed}_exact.npy"
    if path.exists():
        matrix = np.load(path)
    else:
        matrix = testing.matrix_with_spectrum(eigenvalues, seed=seed).matrix
        CACHE.mkdir(exist_ok=True)
        np.save(path, matrix)
    return Problem(
        f"dense n = {n}", "matrix", eigenvalues, matrix=matrix, note="semicircle + 4 outliers"
    )


def symmetric_gaussian(p: int, rng: np.random.Generator) -> np.ndarray:
    g = rng.standard_normal((p, p))
    return (g + g.T) / np.sqrt(2 * p)


def matrix_free(p: int, q: int, seed: int = 0) -> Problem:
    """A randomly permuted Kronecker sum A ⊗ I + I ⊗ B, n = p·q, about p + q nonzeros a row.

    A and B are dense symmetric Gaussian (A with two spikes), so the operator is a
    sparse matrix with a few hundred nonzeros a row in random positions, and its
    spectrum {λ_i(A) + μ_j(B)} is exact from two small eigendecompositions (a
    permutation PᵀMP leaves it unchanged).
    """
    rng = np.random.default_rng(seed)
    a = symmetric_gaussian(p, rng)
    u = np.linalg.qr(rng.standard_normal((p, 2)))[0]
    a += (u * np.array([4.0, 8.0])) @ u.T
    b = symmetric_gaussian(q, rng)
    kron = sp.kron(sp.csr_array(a), sp.eye_array(q)) + sp.kron(sp.eye_array(p), sp.csr_array(b))
    perm = rng.permutation(p * q)
    matrix = sp.csr_array(kron)[perm][:, perm].tocsr()
    matrix.sort_indices()
    eigenvalues = np.sort(np.add.outer(np.linalg.eigvalsh(a), np.linalg.eigvalsh(b)).ravel())
    return Problem(
        f"matrix-free n = {p * q}",
        "matrix",
        eigenvalues,
        matrix=matrix,
        note=f"scipy CSR, {matrix.nnz / (p * q):.0f} nonzeros a row",
    )


def fingerprint(model: Any, tag: str) -> str:
    digest = hashlib.sha1(tag.encode())
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def network_spectrum(model: Any, data: Any, name: str) -> np.ndarray:
    """Eigenvalues of the dense float64 Hessian, from fresh double-backward products; cached."""
    path = CACHE / f"hessian_{fingerprint(model, name)}.npy"
    if path.exists():
        return np.load(path)
    import torch

    from slq import adapters

    # Fresh forward-over-reverse products, vmapped over 128 columns at a time: no state
    # reused between products, and the adapter checks them against double backward.
    op = adapters.torch_hessian(
        model, data, batchnorm="eval", hvp="forward-over-reverse", reuse_primal=False
    )
    n = op.shape[0]
    log.info("%s: dense Hessian of %d parameters, then eigvalsh (cached after)", name, n)
    eye = torch.eye(n, dtype=torch.float64)
    dense = torch.cat([op.matmat(eye[:, i : i + 128]) for i in range(0, n, 128)], dim=1).numpy()
    eigenvalues = np.linalg.eigvalsh((dense + dense.T) / 2)
    CACHE.mkdir(exist_ok=True)
    np.save(path, eigenvalues)
    return eigenvalues


def digits64(image: bool) -> tuple[Any, Any]:
    import torch
    from _common import digits

    x, y = digits()
    inputs = torch.tensor(x, dtype=torch.float64)
    return (inputs.reshape(-1, 1, 8, 8) if image else inputs), torch.tensor(y)


def cnn(width: int, batchnorm: bool) -> Any:
    """conv(width) [BN] ReLU conv(2 width) [BN] ReLU linear, on 8x8 images (as torch_hessian.py)."""
    from torch import nn

    def norm(c: int) -> list[nn.Module]:
        return [nn.BatchNorm2d(c)] if batchnorm else []

    return nn.Sequential(
        nn.Conv2d(1, width, 3),
        *norm(width),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3),
        *norm(2 * width),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * width * 4 * 4, 10),
    )


def network(name: str, model: Any, image: bool, train_steps: int) -> Problem:
    from torch_hessian import trained

    data = digits64(image)
    model = model.double()
    if train_steps:
        model = trained(model, *data, steps=train_steps)
    model.eval()  # eval-mode BatchNorm for every tool: curvlinops refuses train mode
    return Problem(name, "network", network_spectrum(model, data, name), model=model, data=data)


def build(name: str, quick: bool) -> Problem:
    """The problem called `name` (one of NAMES), full-size or small (`quick`)."""
    import torch
    from torch_hessian import mlp

    torch.manual_seed(0)
    hidden, width = (16, 2) if quick else (200, 4)
    if name == "dense":
        return dense_spiked(500 if quick else 4000)
    if name == "matrix-free":
        return matrix_free(20, 100) if quick else matrix_free(100, 200)
    if name in ("mlp-init", "mlp-trained"):
        trained_steps = 60 if name == "mlp-trained" else 0
        label = f"MLP 64-{hidden}-10 tanh, {'trained' if trained_steps else 'at init'}"
        return network(label, mlp(hidden), image=False, train_steps=trained_steps)
    if name in ("cnn", "cnn-bn"):
        bn = name == "cnn-bn"
        label = f"CNN {width}-{2 * width} channels{' + BatchNorm (eval)' if bn else ''}, trained"
        return network(label, cnn(width, bn), image=True, train_steps=60)
    raise ValueError(f"unknown problem {name!r}; choose from {NAMES}")


NAMES = ("dense", "matrix-free", "mlp-init", "mlp-trained", "cnn", "cnn-bn")
