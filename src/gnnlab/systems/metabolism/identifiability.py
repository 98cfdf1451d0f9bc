"""Which rate constants the data can determine, computed from the known structure alone.

Under mass action every reaction's rate is ``k_j * phi_j(t)`` where ``phi_j`` depends only on the reaction's
substrate signature (which metabolites it consumes, and how many of each). Reactions sharing a signature
share ``phi``, so their summed contribution to dc/dt is ``S_G k_G phi_G(t)``: only the combinations of ``k_G``
in the row space of ``S_G`` are determined. Distinct signatures give linearly independent ``phi(t)`` along a
generic trajectory, so the rows of the null space of each ``S_G`` tell exactly which reactions are not
individually identifiable: duplicated reactions (only k1 + k2 is known), reversed autocatalytic pairs
(A+B→2B vs A+B→2A, only k1 - k2), reactions that change nothing, and larger dependent groups.

:func:`design_identifiability` checks the same thing numerically on a design matrix built from data.
"""

import dataclasses
import math

import numpy as np
import scipy.linalg
from scipy.signal import savgol_filter


@dataclasses.dataclass(frozen=True)
class IdentifiabilityReport:
    identifiable: np.ndarray  # (R,) bool
    n_null_directions: int  # dimension of the space of k changes that leave dc/dt unchanged
    n_empty_reactions: int  # reactions with a zero stoichiometry column
    n_duplicate_pairs: int  # same substrates, same net stoichiometry
    n_reversed_pairs: int  # same substrates, opposite net stoichiometry
    isolated_metabolites: tuple[int, ...]  # metabolites in no reaction
    unidentifiable_groups: tuple[tuple[int, ...], ...]  # reactions whose k are only known in combination

    @property
    def n_identifiable(self) -> int:
        return int(self.identifiable.sum())

    def summary(self) -> dict[str, int]:
        """Counts for metrics files."""
        return {
            "n_reactions": int(self.identifiable.size),
            "n_identifiable": self.n_identifiable,
            "n_null_directions": self.n_null_directions,
            "n_empty_reactions": self.n_empty_reactions,
            "n_duplicate_pairs": self.n_duplicate_pairs,
            "n_reversed_pairs": self.n_reversed_pairs,
            "n_isolated_metabolites": len(self.isolated_metabolites),
        }


def _null_rows(matrix: np.ndarray, tol: float = 1e-9) -> tuple[np.ndarray, int]:
    """Per column of ``matrix``: does the null space reach it? Also returns the null-space dimension."""
    null = scipy.linalg.null_space(matrix, rcond=tol)
    return (null**2).sum(axis=1) > tol, null.shape[1]


def structural_identifiability(reactants: np.ndarray, stoichiometry: np.ndarray) -> IdentifiabilityReport:
    """Exact structural test from the substrate coefficients (N, R) and net stoichiometry (N, R)."""
    n_rxn = stoichiometry.shape[1]
    identifiable = np.ones(n_rxn, dtype=bool)
    groups: dict[bytes, list[int]] = {}
    for j in range(n_rxn):
        groups.setdefault(np.ascontiguousarray(reactants[:, j]).tobytes(), []).append(j)

    n_null = n_dup = n_rev = 0
    unidentifiable_groups = []
    for members in groups.values():
        s_group = stoichiometry[:, members].astype(float)
        reached, dim = _null_rows(s_group)
        n_null += dim
        if reached.any():
            identifiable[np.asarray(members)[reached]] = False
            unidentifiable_groups.append(tuple(int(m) for m in np.asarray(members)[reached]))
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                col_a, col_b = s_group[:, a], s_group[:, b]
                if col_a.any() and np.array_equal(col_a, col_b):
                    n_dup += 1
                elif col_a.any() and np.array_equal(col_a, -col_b):
                    n_rev += 1

    empty = ~stoichiometry.any(axis=0)
    isolated = np.flatnonzero(~(stoichiometry.any(axis=1) | reactants.any(axis=1)))
    return IdentifiabilityReport(
        identifiable=identifiable,
        n_null_directions=n_null,
        n_empty_reactions=int(empty.sum()),
        n_duplicate_pairs=n_dup,
        n_reversed_pairs=n_rev,
        isolated_metabolites=tuple(int(i) for i in isolated),
        unidentifiable_groups=tuple(sorted(unidentifiable_groups)),
    )


def design_identifiability(
    stoichiometry: np.ndarray, unit_rates: np.ndarray, tol: float = 1e-8
) -> tuple[np.ndarray, int]:
    """Numerical test on data: which k are determined by the least-squares problem dc/dt = S diag(k) phi(t)?

    ``unit_rates`` (T, R) holds ``phi_j(t)``, the rate of every reaction with k = 1. The design matrix
    ``A[(t, i), j] = S_ij phi_tj`` is never formed: its Gram matrix is the elementwise product
    ``(S^T S) * (phi^T phi)``.
    Returns the identifiable mask and the rank.
    """
    gram = (stoichiometry.T @ stoichiometry) * (unit_rates.T @ unit_rates)
    scale = np.sqrt(np.diag(gram))
    live = scale > 0
    normed = gram[np.ix_(live, live)] / np.outer(scale[live], scale[live])
    eigval, eigvec = np.linalg.eigh(normed)
    null = eigvec[:, eigval < tol * eigval.max()]
    identifiable = np.zeros(gram.shape[0], dtype=bool)
    identifiable[live] = (null**2).sum(axis=1) < 1e-6
    return identifiable, int(live.sum() - null.shape[1])


def noise_floor(states: np.ndarray) -> np.ndarray:
    """Per-node measurement-noise std (N,) from readings (runs, T, N) alone, where the node is low.

    Third differences of white noise of std sigma have std sqrt(20) sigma, and a smooth trajectory sampled
    finely adds almost nothing; the median absolute deviation ignores the few sharp turns of the signal.
    Only frames in the node's lower half are used, so relative (proportional) noise gives the noise of
    small readings, the ones a floor is about.
    """
    third = np.diff(states, n=3, axis=1)
    low = states[:, 1:-2] <= np.median(states, axis=(0, 1))
    floor = np.zeros(states.shape[-1])
    for i in range(states.shape[-1]):
        values = third[..., i][low[..., i]]
        if values.size:
            floor[i] = 1.4826 * np.median(np.abs(values - np.median(values))) / math.sqrt(20.0)
    return floor


DETECTION_LIMIT_SIGMAS = 3.0  # a reading counts as above the noise level at 3 noise stds (limit of detection)
PRACTICAL_SMOOTHING_WINDOW = 11  # frames of the cubic Savitzky-Golay smoothing the test reads


def practical_identifiability(
    readings: np.ndarray, reactants: np.ndarray, structural: np.ndarray
) -> np.ndarray:
    """Which structurally identifiable reactions the *readings* (runs, T, N) can still determine: (R,) bool.

    A reaction is practically identifiable when, in at least half of the frames, every one of its
    substrates reads above the limit of detection, ``DETECTION_LIMIT_SIGMAS`` times that metabolite's noise
    floor (:func:`noise_floor`), after a cubic Savitzky-Golay smoothing over ``PRACTICAL_SMOOTHING_WINDOW``
    frames. Below it the substrate's reading is mostly noise, so is the reaction's rate there, and its k is
    fitted from the few frames left. Computed from observations alone (no ground truth); on clean readings
    the floor is ~0 and the set is the structural one minus reactions whose substrates are mostly empty.
    """
    floor = noise_floor(readings)
    window = min(PRACTICAL_SMOOTHING_WINDOW, readings.shape[1] - (1 - readings.shape[1] % 2))
    smooth = savgol_filter(readings, window, 3, axis=1) if window > 3 else readings
    above = (smooth > DETECTION_LIMIT_SIGMAS * floor).reshape(-1, readings.shape[-1])  # (F, N)
    substrates = (reactants > 0).astype(np.float32)  # (N, R)
    n_below = (~above).astype(np.float32) @ substrates  # (F, R) substrates below the limit per frame
    detectable = (n_below == 0).mean(axis=0) >= 0.5
    return structural & detectable
