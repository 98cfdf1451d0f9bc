"""The manifold maps the perturbation model relies on (geoopt's Poincaré ball, and its flat twin) obey
their identities: the prior system's hand-written maps broke every one of these."""

import geoopt
import pytest
import torch

torch.manual_seed(0)
TANGENT = 0.7 * torch.randn(50, 4, dtype=torch.float64)


@pytest.fixture(params=[0.5, 1.0, 2.0], ids=lambda c: f"c={c}")
def ball(request) -> geoopt.PoincareBall:
    return geoopt.PoincareBall(c=request.param)


def points(ball: geoopt.PoincareBall, scale: float = 1.0) -> torch.Tensor:
    return ball.expmap0(scale * TANGENT)


def test_log_map_at_the_origin_inverts_the_exponential_map(ball):
    assert torch.allclose(ball.logmap0(ball.expmap0(TANGENT)), TANGENT, atol=1e-10)


def test_log_map_at_any_point_inverts_the_exponential_map_there(ball):
    x = points(ball, 0.3)  # well inside: near the boundary geoopt projects, which no inverse can undo
    v = 0.3 * TANGENT.flip(0)
    assert torch.allclose(ball.logmap(x, ball.expmap(x, v)), v, atol=1e-9)


def test_distance_is_symmetric(ball):
    x, y = points(ball), points(ball).flip(0)
    assert torch.allclose(ball.dist(x, y), ball.dist(y, x), atol=1e-10)


def test_distance_from_the_origin_is_two_over_root_c_artanh_of_root_c_norm(ball):
    x = points(ball)
    c = ball.c
    expected = 2 / c.sqrt() * torch.atanh(c.sqrt() * x.norm(dim=-1))
    assert torch.allclose(ball.dist0(x), expected, atol=1e-9)
    assert torch.allclose(ball.dist(torch.zeros_like(x), x), expected, atol=1e-9)


def test_exponential_map_at_the_origin_scales_a_tangent_vector_by_the_conformal_factor(ball):
    # d(0, exp_0(v)) = lambda_0 |v| = 2 |v|: the factor the prior system left out
    assert torch.allclose(ball.dist0(ball.expmap0(TANGENT)), 2 * TANGENT.norm(dim=-1), atol=1e-9)


def test_huge_tangent_vectors_map_inside_the_ball(ball):
    x = ball.projx(ball.expmap0(torch.full((3, 4), 1e6, dtype=torch.float32)))
    assert torch.all(x.norm(dim=-1) < 1 / ball.c.sqrt())


def test_the_flat_twin_reduces_mobius_operations_to_euclidean_ones():
    flat = geoopt.Stereographic(k=0.0)
    x, y = TANGENT, TANGENT.flip(0)
    assert torch.allclose(flat.mobius_add(x, y), x + y, atol=1e-12)
    assert torch.allclose(flat.expmap0(x), x, atol=1e-12)
    assert torch.allclose(flat.dist(x, y), 2 * (x - y).norm(dim=-1), atol=1e-10)
