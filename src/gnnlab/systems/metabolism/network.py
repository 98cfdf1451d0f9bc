"""Random reaction networks: autocatalytic cycles plus random mass-balanced reactions.

A network is two non-negative integer matrices of shape (n_metabolites, n_reactions): ``reactants`` holds
each reaction's substrate coefficients (the mass-action orders) and ``products`` its product coefficients.
The net stoichiometry is ``S = products - reactants``. Both are *known structure*: an experimenter writing
down the reactions knows them, so they travel with the observations.
"""

import dataclasses

import numpy as np

from gnnlab.config.metabolism import MetabolismSimulation


@dataclasses.dataclass(frozen=True)
class Network:
    reactants: np.ndarray  # (N, R) substrate coefficients, >= 0
    products: np.ndarray  # (N, R) product coefficients, >= 0

    @property
    def stoichiometry(self) -> np.ndarray:
        """Net stoichiometry S (N, R): dc/dt = S v."""
        return self.products - self.reactants


def random_network(config: MetabolismSimulation, rng: np.random.Generator) -> Network:
    """Draw a network as the config describes.

    ``floor(n_reactions * cycle_fraction / cycle_length)`` cycles of ``cycle_length`` metabolites each give
    reactions ``m_i + m_{i+1} -> 2 m_{i+1}`` (the catalyst m_{i+1} turns food m_i into itself). Cycle members
    are drawn without replacement from a shuffled pool, reshuffled from all metabolites once fewer than
    ``cycle_length`` remain (the few left over are skipped in that pass). The remaining reactions are random
    and mass-balanced (unit masses): 1..max substrates with coefficients in {1, 2}, products on disjoint
    metabolites splitting the consumed total.
    """
    n_met, n_rxn = config.n_metabolites, config.n_reactions
    reactants = np.zeros((n_met, n_rxn), dtype=np.int64)
    products = np.zeros((n_met, n_rxn), dtype=np.int64)

    n_cycles = int(n_rxn * config.cycle_fraction) // config.cycle_length
    pool: list[int] = []
    j = 0  # next reaction index to fill
    for _ in range(n_cycles):
        if len(pool) < config.cycle_length:
            pool = list(rng.permutation(n_met))
        members = [pool.pop() for _ in range(config.cycle_length)]
        for i in range(config.cycle_length):
            food, catalyst = members[i], members[(i + 1) % config.cycle_length]
            reactants[food, j] = reactants[catalyst, j] = 1
            products[catalyst, j] = 2
            j += 1

    max_side = max(1, min(config.max_metabolites_per_reaction, n_met // 2))
    for j in range(n_cycles * config.cycle_length, n_rxn):
        n_sub = int(rng.integers(1, max_side + 1))
        n_prod = int(rng.integers(1, max_side + 1))
        chosen = rng.choice(n_met, size=min(n_met, n_sub + n_prod), replace=False)
        subs, prods = chosen[:n_sub], chosen[n_sub:]
        coeffs = rng.integers(1, 3, size=n_sub)
        reactants[subs, j] = coeffs
        if len(prods) == 0:  # a network too small for disjoint products: the reaction only consumes
            continue
        split = np.bincount(rng.integers(0, len(prods), size=int(coeffs.sum())), minlength=len(prods))
        products[prods, j] = split
    return Network(reactants=reactants, products=products)


class MassAction:
    """The mass-action rate law of a fixed network with every k = 1: phi_j = prod_k c_k^{r_kj}.

    The substrate table (index and order per reaction, padded with an appended constant 1) is built once, so
    evaluating all rates is two array operations per call.
    """

    def __init__(self, network: Network):
        self.network = network
        reactants = network.reactants
        n_met, n_rxn = reactants.shape
        width = max(1, int((reactants > 0).sum(axis=0).max()))
        self.index = np.full((n_rxn, width), n_met)
        self.order = np.zeros((n_rxn, width))
        for j in range(n_rxn):
            (subs,) = np.nonzero(reactants[:, j])
            self.index[j, : len(subs)], self.order[j, : len(subs)] = subs, reactants[subs, j]

    def unit_rates(self, concentrations: np.ndarray) -> np.ndarray:
        """phi (..., R) for concentrations (..., N)."""
        padded = np.concatenate([concentrations, np.ones(concentrations.shape[:-1] + (1,))], axis=-1)
        return np.prod(padded[..., self.index] ** self.order, axis=-1)
