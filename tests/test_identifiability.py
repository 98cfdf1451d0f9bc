"""Structural identifiability of rate constants, on hand-written networks whose answer is known.

Metabolites are named by letters A, B, C, ... (rows); each reaction is written as (substrates, products) with
coefficients, e.g. ({"A": 1, "B": 1}, {"B": 2}) for A + B -> 2B.
"""

import numpy as np
import pytest

from gnnlab.config import MetabolismSimulation
from gnnlab.systems.metabolism.identifiability import design_identifiability, structural_identifiability
from gnnlab.systems.metabolism.network import MassAction, Network
from gnnlab.systems.metabolism.simulator import MetabolismSystem

Side = dict[str, int]

A_B_TO_2B = ({"A": 1, "B": 1}, {"B": 2})
A_B_TO_2A = ({"A": 1, "B": 1}, {"A": 2})
B_C_TO_2C = ({"B": 1, "C": 1}, {"C": 2})
C_A_TO_2A = ({"C": 1, "A": 1}, {"A": 2})


def matrices(reactions: list[tuple[Side, Side]], n_metabolites: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(reactants, stoichiometry), both int arrays of shape (n_metabolites, n_reactions)."""
    reactants = np.zeros((n_metabolites, len(reactions)), dtype=np.int64)
    products = np.zeros_like(reactants)
    for j, (subs, prods) in enumerate(reactions):
        for name, coeff in subs.items():
            reactants[ord(name) - ord("A"), j] = coeff
        for name, coeff in prods.items():
            products[ord(name) - ord("A"), j] = coeff
    return reactants, products - reactants


def test_distinct_reactions_are_all_identifiable():
    reactants, stoich = matrices([A_B_TO_2B, B_C_TO_2C, C_A_TO_2A, ({"A": 2}, {"B": 1, "C": 1})])
    report = structural_identifiability(reactants, stoich)
    assert report.identifiable.tolist() == [True, True, True, True]
    assert report.n_identifiable == 4
    assert report.n_null_directions == 0
    assert report.unidentifiable_groups == ()
    assert (report.n_empty_reactions, report.n_duplicate_pairs, report.n_reversed_pairs) == (0, 0, 0)
    assert report.isolated_metabolites == ()


def test_duplicate_reactions_are_only_identifiable_as_a_sum():
    reactants, stoich = matrices([A_B_TO_2B, A_B_TO_2B, B_C_TO_2C])
    report = structural_identifiability(reactants, stoich)
    assert report.identifiable.tolist() == [False, False, True]
    assert report.n_null_directions == 1
    assert report.n_duplicate_pairs == 1
    assert report.n_reversed_pairs == 0
    assert report.unidentifiable_groups == ((0, 1),)


def test_reversed_autocatalytic_pair_is_only_identifiable_as_a_difference():
    reactants, stoich = matrices([A_B_TO_2B, A_B_TO_2A, B_C_TO_2C])
    report = structural_identifiability(reactants, stoich)
    assert report.identifiable.tolist() == [False, False, True]
    assert report.n_null_directions == 1
    assert report.n_reversed_pairs == 1
    assert report.n_duplicate_pairs == 0
    assert report.unidentifiable_groups == ((0, 1),)


def test_a_reaction_that_changes_nothing_is_unidentifiable():
    catalytic_no_op = ({"A": 1}, {"A": 1})  # A -> A: a zero stoichiometry column
    reactants, stoich = matrices([A_B_TO_2B, catalytic_no_op, B_C_TO_2C])
    report = structural_identifiability(reactants, stoich)
    assert report.identifiable.tolist() == [True, False, True]
    assert report.n_empty_reactions == 1
    assert report.n_null_directions == 1
    assert report.unidentifiable_groups == ((1,),)


def test_a_metabolite_in_no_reaction_is_reported_isolated():
    reactants, stoich = matrices([A_B_TO_2B, ({"A": 1, "C": 1}, {"C": 1, "B": 1})], n_metabolites=5)
    report = structural_identifiability(reactants, stoich)
    assert report.isolated_metabolites == (3, 4)  # D and E
    assert report.summary()["n_isolated_metabolites"] == 2
    assert report.identifiable.all()


def test_a_pure_catalyst_is_not_isolated():
    # C appears on both sides of A + C -> B + C: its net stoichiometry is zero, but it sets the rate
    reactants, stoich = matrices([({"A": 1, "C": 1}, {"B": 1, "C": 1})])
    assert not stoich[2].any()
    assert structural_identifiability(reactants, stoich).isolated_metabolites == ()


def test_three_reactions_sharing_a_direction_leave_two_null_directions():
    reactants, stoich = matrices([A_B_TO_2B, A_B_TO_2B, A_B_TO_2A, B_C_TO_2C])
    report = structural_identifiability(reactants, stoich)
    assert report.identifiable.tolist() == [False, False, False, True]
    assert report.n_null_directions == 2
    assert report.unidentifiable_groups == ((0, 1, 2),)
    assert report.n_duplicate_pairs == 1  # (0, 1)
    assert report.n_reversed_pairs == 2  # (0, 2) and (1, 2)


def test_same_substrates_with_independent_stoichiometry_are_identifiable():
    # both consume A + B at rate k * [A][B], but their effects on dc/dt point in independent directions
    reactants, stoich = matrices([A_B_TO_2B, ({"A": 1, "B": 1}, {"C": 2})])
    report = structural_identifiability(reactants, stoich)
    assert report.identifiable.tolist() == [True, True]
    assert report.n_null_directions == 0


def test_a_dependent_group_without_duplicate_or_reversed_pairs_is_unidentifiable():
    # S3 = S1 + S2 with shared substrates A + B: only two combinations of three k are determined
    reactants, stoich = matrices(
        [A_B_TO_2B, ({"A": 1, "B": 1}, {"A": 1, "C": 1}), ({"A": 1, "B": 1}, {"B": 1, "C": 1})]
    )
    np.testing.assert_array_equal(stoich[:, 2], stoich[:, 0] + stoich[:, 1])
    report = structural_identifiability(reactants, stoich)
    assert report.identifiable.tolist() == [False, False, False]
    assert report.n_null_directions == 1
    assert (report.n_duplicate_pairs, report.n_reversed_pairs) == (0, 0)


def test_reactions_with_different_substrates_are_never_pooled():
    # same net stoichiometry, different substrate orders: phi differs, so both k are identifiable
    reactants, stoich = matrices([({"A": 1}, {"B": 1}), ({"A": 2}, {"A": 1, "B": 1})])
    np.testing.assert_array_equal(stoich[:, 0], stoich[:, 1])
    report = structural_identifiability(reactants, stoich)
    assert report.identifiable.all()
    assert report.n_duplicate_pairs == 0


def test_summary_reports_the_counts():
    reactants, stoich = matrices([A_B_TO_2B, A_B_TO_2B, A_B_TO_2A, B_C_TO_2C], n_metabolites=4)
    assert structural_identifiability(reactants, stoich).summary() == {
        "n_reactions": 4,
        "n_identifiable": 1,
        "n_null_directions": 2,
        "n_empty_reactions": 0,
        "n_duplicate_pairs": 1,
        "n_reversed_pairs": 2,
        "n_isolated_metabolites": 1,
    }


@pytest.fixture(scope="module")
def simulated():
    config = MetabolismSimulation(
        n_metabolites=12, n_reactions=16, n_frames=200, n_runs=2, n_validation_runs=1, seed=3
    )
    return MetabolismSystem().simulate(config)


def test_design_identifiability_on_simulated_data_agrees_with_the_structure(simulated):
    observations, truth = simulated
    # append a duplicate of reaction 0 and the reverse of autocatalytic reaction 1 (A + B -> 2B becomes 2A)
    reactants = observations.reactants
    products = reactants + observations.stoichiometry
    assert products[:, 1].max() == 2 and reactants[:, 1].sum() == 2
    reversed_products = np.where(reactants[:, 1] > 0, 2 - products[:, 1], 0)
    network = Network(
        reactants=np.column_stack([reactants, reactants[:, 0], reactants[:, 1]]),
        products=np.column_stack([products, products[:, 0], reversed_products]),
    )
    n_rxn = network.reactants.shape[1]
    unit_rates = MassAction(network).unit_rates(truth.clean_concentrations.reshape(-1, 12))

    structural = structural_identifiability(network.reactants, network.stoichiometry)
    design, rank = design_identifiability(network.stoichiometry, unit_rates)

    expected = np.ones(n_rxn, dtype=bool)
    expected[[0, 1, n_rxn - 2, n_rxn - 1]] = False
    np.testing.assert_array_equal(structural.identifiable, expected)
    np.testing.assert_array_equal(design, structural.identifiable)
    assert rank == n_rxn - structural.n_null_directions == n_rxn - 2


def test_design_identifiability_finds_every_simulated_reaction_identifiable(simulated):
    observations, truth = simulated
    network = Network(observations.reactants, observations.reactants + observations.stoichiometry)
    unit_rates = MassAction(network).unit_rates(truth.clean_concentrations.reshape(-1, 12))
    design, rank = design_identifiability(network.stoichiometry, unit_rates)
    structural = structural_identifiability(network.reactants, network.stoichiometry)
    np.testing.assert_array_equal(design, structural.identifiable)
    assert rank == structural.n_identifiable == 16


def test_design_identifiability_marks_a_reaction_that_never_fires_unidentifiable():
    stoich = np.array([[-1, 1], [1, -1]])
    unit_rates = np.column_stack([np.linspace(1.0, 2.0, 10), np.zeros(10)])
    identifiable, rank = design_identifiability(stoich, unit_rates)
    assert identifiable.tolist() == [True, False]
    assert rank == 1
