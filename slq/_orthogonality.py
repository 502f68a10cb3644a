"""Partial reorthogonalisation: when to reorthogonalise, from Simon's ω-recurrence.

Without reorthogonalisation the Lanczos vectors lose orthogonality as Ritz values
converge (Paige 1976), and converged eigenvalues come back as spurious copies
("ghosts"). Full reorthogonalisation prevents this at O(j n) work a step. Simon
(1984) showed that *semi-orthogonality*, |q_iᵀ q_j| ≤ sqrt(ε) for all i ≠ j,
already makes the tridiagonal T_j the projection of A on an orthonormal basis
of the Krylov space to working precision, so its Ritz values (our quadrature
nodes) and the first components of its eigenvectors (our weights) are as
accurate as with full reorthogonalisation. He estimates ω_{j,i} ≈ q_jᵀ q_i from
the α's and β's alone and reorthogonalises only when an estimate reaches sqrt(ε),
then twice in a row, and only against the runs of vectors whose estimates exceed
ε^(3/4) around one that reached sqrt(ε) (Simon 1984, §4; Larsen 1998, PROPACK):
the loss concentrates on the directions of converged Ritz vectors, which the
first few Lanczos vectors span.

Only scalars: the estimates live on the host, O(k m) numbers.
"""

from __future__ import annotations

import numpy as np

__all__ = ["OrthogonalityMonitor"]


class OrthogonalityMonitor:
    """Simon's (1984) estimates ω_{j,i} ≈ q_jᵀ q_i for k Lanczos runs advancing together.

    The recurrence (Simon 1984, eq. (4.2); β_i joins q_i and q_{i+1}):

        β_j ω_{j+1,i} = β_i ω_{j,i+1} + (α_i − α_j) ω_{j,i} + β_{i−1} ω_{j,i−1}
                        − β_{j−1} ω_{j−1,i} ± ε ‖A‖,

    the last term modelling the rounding of step j with the sign that makes the
    estimate grow. ω_{j+1,j} and ω_{j+1,j−1} are set to ε because each new vector
    is reorthogonalised locally against q_j and q_{j−1} (two inner products).

    Examples
    --------
    >>> import numpy as np
    >>> from slq._orthogonality import OrthogonalityMonitor
    >>> monitor = OrthogonalityMonitor(1, 4, eps=2.0**-52)
    >>> monitor.rows_to_project(0, np.array([1.0]), np.array([0.5]), np.array([1.2]))
    0
    """

    def __init__(self, k: int, m: int, *, eps: float) -> None:
        self.eps = eps
        self.threshold = float(np.sqrt(eps))
        self.eta = float(eps**0.75)
        self._alpha = np.zeros((k, m))
        self._beta = np.zeros((k, m))
        self._current = np.zeros((k, m + 1))  # ω_{j,·}
        self._current[:, 0] = 1.0
        self._previous = np.zeros((k, m + 1))  # ω_{j−1,·}
        self._norm = np.zeros(k)  # the largest ‖A q_j‖ so far: a lower bound on ‖A‖
        self._again = False
        self._rows = 0  # the prefix of the basis projected against at the last step

    def rows_to_project(
        self, j: int, alpha: np.ndarray, beta: np.ndarray, image_norm: np.ndarray
    ) -> int:
        """Take step j's α_j, β_j, ‖A q_j‖; return how many vectors to reorthogonalise against.

        0 means none: the basis stays semi-orthogonal without. Otherwise r > 0:
        q_{j+1} is to be projected against q_0 … q_{r−1}, which holds every
        run of estimates above ε^(3/4) that reaches √ε (Larsen 1998), and the
        caller does it: the estimates of those r are reset to ε. A later run
        that stays below √ε is left to grow until it reaches √ε itself.
        After one reorthogonalisation the next vector is done too: q_{j+2} is
        built from q_j, whose own loss is not repaired (Simon 1984, §4).

        Examples
        --------
        >>> import numpy as np
        >>> from slq._orthogonality import OrthogonalityMonitor
        >>> monitor = OrthogonalityMonitor(1, 4, eps=2.0**-52)
        >>> steps = [(0.0, 1.0), (1.0, 1.0), (5.0, 1e-12), (1.0, 1.0)]
        >>> [monitor.rows_to_project(j, np.array([a]), np.array([b]), np.array([5.0]))
        ...  for j, (a, b) in enumerate(steps)]
        [0, 0, 1, 1]
        """
        self._alpha[:, j], self._beta[:, j] = alpha, beta
        self._norm = np.maximum(self._norm, image_norm)
        row = self._next_row(j)
        self._previous, self._current = self._current, row
        forced, self._again = self._again, False
        largest = np.max(np.abs(row[:, : j + 1]), axis=0, initial=0.0)
        if not forced and largest.max(initial=0.0) < self.threshold:
            return 0
        rows = max(self._run_end(largest), self._rows if forced else 1)
        row[:, :rows] = self.eps
        self._again, self._rows = not forced, rows
        return rows

    def _run_end(self, largest: np.ndarray) -> int:
        """Return the end of the last run of estimates ≥ ε^(3/4) that reaches √ε (0: none).

        Larsen's (1998) intervals: only a run holding a lost direction needs the
        projection; estimates in [ε^(3/4), √ε) elsewhere are left to grow.
        """
        lost = np.flatnonzero(largest >= self.threshold)
        if not lost.size:
            return 0
        last = int(lost[-1])
        below = np.flatnonzero(largest[last:] < self.eta)
        return last + int(below[0]) if below.size else largest.size

    def projected(self, j: int, beta: np.ndarray) -> None:
        """Take β_j of the residual as it was projected: the recurrence continues from it.

        Projection removes what the residual had along the basis; its norm can
        drop by orders of magnitude near a breakdown, and the later estimates
        divide by it.
        """
        self._beta[:, j] = np.where(self._beta[:, j] > 0.0, beta, 0.0)

    def _next_row(self, j: int) -> np.ndarray:
        """Return ω_{j+1,·}: entries 0..j+1 filled, the rest 0."""
        eps, beta_j = self.eps, self._beta[:, j : j + 1]
        current, previous = self._current, self._previous
        row = np.zeros_like(current)
        if j >= 2:
            i = np.arange(j - 1)  # 0..j−2; j−1 and j are local
            a, b = self._alpha, self._beta
            raw = b[:, i] * current[:, i + 1] + (a[:, i] - a[:, j : j + 1]) * current[:, i]
            raw[:, 1:] += b[:, i[1:] - 1] * current[:, i[1:] - 1]
            raw -= b[:, j - 1 : j] * previous[:, i]
            raw += np.where(raw >= 0.0, 1.0, -1.0) * eps * self._norm[:, None]
            # A probe that broke down (β_j = 0) has no next vector: its row stays 0.
            safe = np.where(beta_j > 0.0, beta_j, np.inf)
            row[:, : j - 1] = raw / safe
        row[:, max(j - 1, 0) : j + 1] = eps
        row[:, j + 1] = 1.0
        return row
