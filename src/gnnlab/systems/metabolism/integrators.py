r"""Integrators of the metabolic dynamics: flux-limited Euler, RK4, and LSODA for stiff networks.

All three integrate the same field,

.. math::
    f(c, t) = S\,(k \circ \phi(c^+)) - \lambda (c^+ - c^{base}) + u^{gated}(c, t),

with :math:`c^+ = \max(c, 0)` and the external input ``u`` acting as a sink only while the pool is not
empty. Mass-action rates vanish as a substrate empties, so the exact solution never leaves the non-negative
orthant; what can is a *discrete* step that overshoots. How each integrator keeps c >= 0 without creating
mass (a clamp at zero would add exactly the overshoot):

* ``euler`` limits fluxes: in each step, a metabolite whose outflow would exceed its content plus inflow
  scales every reaction that consumes it (the whole reaction: products too, so each reaction stays
  mass-balanced) and its own sink, so that it ends the step exactly empty. A step that empties no pool is
  plain explicit Euler. The empty reading is what makes this visible in the data: the training frames mask
  every metabolite of a reaction that consumes a pool read as zero (see ``MetabolismObservations.frames``),
  so every target left is the exact vector field of its frame. The limiter keeps a
  mass-balanced network bounded, so a stiff one would come out finite but wrong; instead, when reactions
  overdraw pools on more than ``max_limited_fraction`` of (step, metabolite) pairs, the simulation stops as
  diverged and names the remedy.
* ``rk4`` and ``lsoda`` evaluate the field at c+, where an empty pool feeds no reaction; an overshoot below
  zero is then of the order of the integration error. The observed (measured) concentrations are read as
  max(c, 0) — a sensor reads no negative amount — while the state itself is never altered.

Process noise is a diffusion (Euler–Maruyama): each substep of length h adds sigma*sqrt(h)*N(0, 1), so its
effect does not depend on the step size. Noise is an exchange with the environment, not a reaction: an
increment that would take a pool below zero is truncated at zero.
"""

from collections.abc import Callable

import numpy as np
from scipy.integrate import solve_ivp

from gnnlab.config.metabolism import MetabolismSimulation
from gnnlab.errors import SimulationDiverged
from gnnlab.systems.integrity import check_trajectory
from gnnlab.systems.metabolism.network import MassAction, Network

InputFn = Callable[[float], np.ndarray]  # t -> u(t), (n_runs, N)
REMEDY = "use integrator: lsoda (stiff networks), or a smaller delta_t or more n_substeps"
LSODA_RTOL, LSODA_ATOL = 1e-6, 1e-9
LIMITER_PASSES = 4
EMPTY = 1e-9  # residue of a limited pool treated as empty (mass lost per event at most this)


class Kinetics(MassAction):
    """The true dynamics of one network and one parameter draw, vectorised over runs."""

    def __init__(self, network: Network, log_k: np.ndarray, lam: np.ndarray, base: np.ndarray):
        super().__init__(network)
        self.stoichiometry = network.stoichiometry.astype(float)
        self.k, self.lam, self.base = 10.0**log_k, lam, base
        self._outflow = np.maximum(-self.stoichiometry, 0.0)
        self._inflow = np.maximum(self.stoichiometry, 0.0)
        # per reaction, the metabolites it net-consumes, padded with index N (a pool that never limits)
        n_met, n_rxn = self.stoichiometry.shape
        consumed = [np.flatnonzero(self.stoichiometry[:, j] < 0) for j in range(n_rxn)]
        self._consumed = np.full((n_rxn, max(1, max(map(len, consumed)))), n_met)
        for j, rows in enumerate(consumed):
            self._consumed[j, : len(rows)] = rows

    @staticmethod
    def _pad(values: np.ndarray, fill: float) -> np.ndarray:
        return np.concatenate([values, np.full(values.shape[:-1] + (1,), fill)], axis=-1)

    def rates(self, c: np.ndarray) -> np.ndarray:
        return self.k * self.unit_rates(np.maximum(c, 0.0))

    def exchange(self, c: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Homeostasis plus the input, the input gated so it never drains an empty pool."""
        c_plus = np.maximum(c, 0.0)
        return -self.lam * (c_plus - self.base) + np.where((u < 0) & (c <= 0), 0.0, u)

    def field(self, c: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self.rates(c) @ self.stoichiometry.T + self.exchange(c, u)

    def jacobian(self, c: np.ndarray) -> np.ndarray:
        """d field / dc for one state (N,), analytic, so LSODA needs no N extra field calls per Jacobian."""
        c_plus = self._pad(np.maximum(c, 0.0), 1.0)
        base = c_plus[self.index]  # (R, W)
        powers = base**self.order
        n_met, (n_rxn, width) = c.shape[0], self.index.shape
        d_rates = np.zeros((n_rxn, n_met + 1))
        for p in range(width):
            order = self.order[:, p]
            others = np.prod(np.delete(powers, p, axis=1), axis=1)
            slope = order * base[:, p] ** np.maximum(order - 1, 0) * others * self.k
            np.add.at(d_rates, (np.arange(n_rxn), self.index[:, p]), slope)
        return self.stoichiometry @ d_rates[:, :n_met] - np.diag(self.lam * (c > 0))

    def limits(
        self,
        c: np.ndarray,
        u: np.ndarray,
        h: float,
        rates: np.ndarray | None = None,
        exchange: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(theta (..., N), rho (..., R)) of one step of length h.

        theta_i < 1 scales the outflow of a pool that would be overdrawn; rho_j = min theta over the pools
        reaction j consumes. The first pass counts no inflow, which is safe (no pool can end negative); each
        further pass credits the inflow the previous, smaller rho lets through, which stays safe (the
        applied rho only lets more in) and moves a binding pool's end state down towards exactly empty.
        ``rates`` and ``exchange`` at c may be passed in when the caller has them already.
        """
        rates = self.rates(c) if rates is None else rates
        exchange = self.exchange(c, u) if exchange is None else exchange
        outflow = h * (rates @ self._outflow.T + np.maximum(-exchange, 0.0))
        inflow = np.zeros_like(c)
        for _ in range(LIMITER_PASSES):
            available = np.maximum(c, 0.0) + inflow
            with np.errstate(divide="ignore", invalid="ignore"):
                theta = np.where(outflow > available, available / outflow, 1.0)
            rho = np.min(self._pad(theta, 1.0)[..., self._consumed], axis=-1)
            inflow = h * ((rho * rates) @ self._inflow.T + np.maximum(exchange, 0.0))
        return theta, rho

    def limited_step(self, c: np.ndarray, u: np.ndarray, h: float) -> tuple[np.ndarray, int]:
        """One flux-limited Euler step of length h (see the module docstring), and how many pools the
        reactions overdrew."""
        rates, exchange = self.rates(c), self.exchange(c, u)
        theta, rho = self.limits(c, u, h, rates, exchange)
        exchange = np.where(exchange < 0, theta * exchange, exchange)
        after = c + h * ((rho * rates) @ self.stoichiometry.T + exchange)
        # a limited pool left with a residue below EMPTY is read as emptied: exactly 0, so the data show it
        # an input draining a pool is a modelled truncation, not a sign of a step too long: not counted
        return np.where((theta < 1) & (after < EMPTY), 0.0, after), int(((theta < 1) & (u >= 0)).sum())


def integrate(
    config: MetabolismSimulation,
    kinetics: Kinetics,
    c0: np.ndarray,
    input_at: InputFn,
    rng: np.random.Generator,
) -> np.ndarray:
    """States at the observed frames (n_runs, n_frames, N) from initial states c0 (n_runs, N)."""
    if config.integrator == "lsoda":
        return _lsoda(config, kinetics, c0, input_at)
    with np.errstate(over="ignore", invalid="ignore"):  # a blow-up is reported by the integrity check
        return _fixed_step(config, kinetics, c0, input_at, rng)


def _fixed_step(
    config: MetabolismSimulation,
    kinetics: Kinetics,
    c: np.ndarray,
    input_at: InputFn,
    rng: np.random.Generator,
) -> np.ndarray:
    states = np.empty((config.n_runs, config.n_frames, c.shape[-1]))
    h = config.delta_t / config.n_substeps
    n_limited = 0
    for frame in range(config.n_frames):
        states[:, frame] = c
        check_trajectory(
            c[:, None], system="metabolism", bound=config.divergence_bound, remedy=REMEDY, first_frame=frame
        )
        u = input_at(frame * config.delta_t)
        for _ in range(config.n_substeps):
            if config.integrator == "euler":
                c, n = kinetics.limited_step(c, u, h)
                n_limited += n
            else:
                c = _rk4_step(kinetics, c, u, h)
            if config.noise_model_level > 0:
                c = np.maximum(c + config.noise_model_level * np.sqrt(h) * rng.standard_normal(c.shape), 0.0)
    limited = n_limited / (c.size * config.n_frames * config.n_substeps)
    if limited > config.max_limited_fraction:
        raise SimulationDiverged(
            f"system 'metabolism': explicit Euler overdrew pools on {limited:.2%} of steps "
            f"(max_limited_fraction {config.max_limited_fraction:g}): the network is too stiff for a step of "
            f"{h:g}; {REMEDY}"
        )
    return states


def _rk4_step(kinetics: Kinetics, c: np.ndarray, u: np.ndarray, h: float) -> np.ndarray:
    k1 = kinetics.field(c, u)
    k2 = kinetics.field(c + 0.5 * h * k1, u)
    k3 = kinetics.field(c + 0.5 * h * k2, u)
    k4 = kinetics.field(c + h * k3, u)
    return c + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def _lsoda(config: MetabolismSimulation, kinetics: Kinetics, c0: np.ndarray, input_at: InputFn) -> np.ndarray:
    """One adaptive solve per run, sampled at the frame times; the input is evaluated in continuous time."""
    times = np.arange(config.n_frames) * config.delta_t
    runs = []
    for run, start in enumerate(c0):
        solution = solve_ivp(
            lambda t, c, run=run: kinetics.field(c, input_at(t)[run]),
            (times[0], times[-1]),
            start,
            method="LSODA",
            t_eval=times,
            jac=lambda t, c: kinetics.jacobian(c),
            rtol=LSODA_RTOL,
            atol=LSODA_ATOL,
        )
        states = solution.y.T
        if not solution.success:
            padded = np.full((config.n_frames, start.shape[0]), np.inf)
            padded[: len(states)] = states
            states = padded
        runs.append(states)
        check_trajectory(
            states[None], system="metabolism", bound=config.divergence_bound, remedy=REMEDY, first_run=run
        )
    return np.stack(runs)


__all__ = ["Kinetics", "integrate"]
