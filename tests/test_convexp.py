"""The convolutional exponential (longrnn.functional.convexp), in float64 on small lattices.

Reference results come from the definition, not from the FFT path: the dense operator is built by
shifting the kernel site by site, and its exponential by `torch.linalg.matrix_exp`.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from longrnn.functional.convexp import (
    adjoint,
    apply_conv_exp,
    apply_spectrum,
    conv_exp,
    conv_exp_spectrum,
    dense_operator,
    embed_stencil,
    kernel_spectrum,
    skew,
)

LATTICES = [(5,), (6,), (3, 4), (4, 5)]  # odd and even sizes, 1-D and 2-D


def random_kernel(c, lattice, complex_, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    dtype = torch.complex128 if complex_ else torch.float64
    return scale * torch.randn(c, c, *lattice, generator=g, dtype=dtype)


def flat(h):
    return h.reshape(h.shape[0], -1)


@pytest.mark.parametrize("lattice", LATTICES)
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("complex_", [False, True])
def test_fft_exponential_equals_dense_matrix_exponential(lattice, c, complex_):
    A = skew(random_kernel(c, lattice, complex_))
    D_A = dense_operator(A)
    assert torch.allclose(D_A, -D_A.conj().T, atol=0, rtol=0)  # anti-symmetric / anti-Hermitian operator
    D_U = dense_operator(conv_exp(A))
    assert torch.allclose(D_U, torch.linalg.matrix_exp(D_A), atol=1e-12, rtol=0)
    eye = torch.eye(D_U.shape[0], dtype=D_U.dtype)
    assert torch.allclose(D_U.conj().T @ D_U, eye, atol=1e-12, rtol=0)
    h = random_kernel(2, (c, *lattice), complex_, seed=1)[0]  # (2, c, *lattice)
    assert torch.allclose(flat(apply_conv_exp(A, h)), flat(h) @ D_U.T, atol=1e-12, rtol=0)


@pytest.mark.parametrize("lattice", LATTICES)
@pytest.mark.parametrize("c", [1, 2])
@pytest.mark.parametrize("complex_", [False, True])
def test_unitary_per_frequency_and_norm_preserving(lattice, c, complex_):
    A = skew(random_kernel(c, lattice, complex_, scale=3.0))
    U_hat = conv_exp_spectrum(A)
    eye = torch.eye(c, dtype=U_hat.dtype)
    assert (U_hat.conj().transpose(-2, -1) @ U_hat - eye).abs().max() < 1e-12
    h = random_kernel(4, (c, *lattice), complex_, seed=2)[0]
    y = apply_spectrum(U_hat, h, real=not complex_)
    assert torch.allclose(flat(y).norm(dim=1), flat(h).norm(dim=1), atol=1e-12, rtol=0)


@pytest.mark.parametrize("lattice", [(7,), (8,), (4, 6)])
def test_real_kernels_stay_real(lattice):
    A = skew(random_kernel(2, lattice, False, scale=2.0))
    U_hat = conv_exp_spectrum(A)
    full = torch.fft.ifftn(U_hat.permute(-2, -1, *range(len(lattice))), dim=tuple(range(2, 2 + len(lattice))))
    assert full.imag.abs().max() < 1e-12  # the exact kernel is real ...
    assert not conv_exp(A).is_complex()  # ... and returned as a real tensor
    h = random_kernel(3, (2, *lattice), False, seed=3)[0]
    onesided = apply_spectrum(conv_exp_spectrum(A, onesided=True), h, onesided=True)
    assert not onesided.is_complex()
    assert torch.allclose(onesided, apply_spectrum(U_hat, h), atol=1e-12, rtol=0)


def bessel_j(n: int, x: float, terms: int = 40) -> float:
    """J_n(x) from its power series; J_{-n} = (-1)^n J_n."""
    if n < 0:
        return (-1) ** n * bessel_j(-n, x, terms)
    return sum((-1) ** m / (math.factorial(m) * math.factorial(m + n)) * (x / 2) ** (2 * m + n) for m in range(terms))


def aliased_bessel(n: int, x: float, N: int) -> float:
    return sum(bessel_j(n + m * N, x) for m in range(-3, 4))


@pytest.mark.parametrize("N,a", [(16, 0.7), (9, 0.4)])
def test_first_difference_generator_gives_bessel_kernel_1d(N, a):
    A = torch.zeros(1, 1, N, dtype=torch.float64)
    A[0, 0, 1], A[0, 0, -1] = a, -a  # a (δ_{+1} - δ_{-1}): already anti-symmetric
    assert torch.equal(skew(A) / 2, A)
    U = conv_exp(A)[0, 0]
    expected = torch.tensor([aliased_bessel(n if n <= N // 2 else n - N, 2 * a, N) for n in range(N)],
                            dtype=torch.float64)
    assert torch.allclose(U, expected, atol=1e-12, rtol=0)
    assert U[1] > 0 > U[-1]  # orientation: the kernel leans towards +1, which a mirrored operator would not


def test_first_difference_generator_gives_separable_bessel_kernel_2d():
    H, W, a, b = 8, 7, 0.6, 0.3
    A = torch.zeros(1, 1, H, W, dtype=torch.float64)
    A[0, 0, 1, 0], A[0, 0, -1, 0] = a, -a
    A[0, 0, 0, 1], A[0, 0, 0, -1] = b, -b
    U = conv_exp(A)[0, 0]
    rows = torch.tensor([aliased_bessel(n if n <= H // 2 else n - H, 2 * a, H) for n in range(H)], dtype=torch.float64)
    cols = torch.tensor([aliased_bessel(n if n <= W // 2 else n - W, 2 * b, W) for n in range(W)], dtype=torch.float64)
    assert torch.allclose(U, torch.outer(rows, cols), atol=1e-12, rtol=0)


def test_adjoint_is_the_operator_adjoint_and_skew_gives_skew():
    K = random_kernel(2, (3, 5), True, seed=4)
    assert torch.allclose(dense_operator(adjoint(K)), dense_operator(K).conj().T, atol=0, rtol=0)
    assert torch.equal(adjoint(adjoint(K)), K)


def test_embed_stencil_centres_at_the_origin():
    stencil = torch.arange(9, dtype=torch.float64).reshape(1, 1, 3, 3)
    K = embed_stencil(stencil, (5, 6))
    assert K[0, 0, 0, 0] == 4  # the centre
    assert K[0, 0, 1, 1] == 8 and K[0, 0, -1, -1] == 0 and K[0, 0, 1, -1] == 6
    assert K.abs().sum() == stencil.sum()
    with pytest.raises(ValueError, match="odd"):
        embed_stencil(torch.ones(1, 1, 2, 2), (5, 5))
    with pytest.raises(ValueError, match="odd"):
        embed_stencil(torch.ones(1, 1, 7, 7), (5, 5))


def test_dc_gain_is_one_for_a_real_single_channel_kernel():
    """A real one-channel generator has Â(0) = 0, so exp_⊛(A) keeps the spatial mean."""
    A = skew(random_kernel(1, (6, 6), False, scale=2.0))
    h = random_kernel(3, (1, 6, 6), False, seed=5)[0]
    y = apply_conv_exp(A, h)
    assert torch.allclose(y.mean(dim=(1, 2, 3)), h.mean(dim=(1, 2, 3)), atol=1e-12, rtol=0)


@pytest.mark.parametrize("c,complex_,lattice",
                         [(1, False, (5,)), (2, False, (3, 4)), (2, True, (4,)), (1, True, (3, 3))])
def test_gradcheck(c, complex_, lattice):
    P = random_kernel(c, lattice, complex_, seed=6, scale=0.5).requires_grad_()
    h = random_kernel(2, (c, *lattice), complex_, seed=7)[0].requires_grad_()
    assert torch.autograd.gradcheck(lambda P, h: apply_conv_exp(skew(P), h), (P, h), fast_mode=True)
    assert torch.autograd.gradcheck(lambda P: conv_exp(skew(P)), (P,), fast_mode=True)


def test_stencil_generator_gradcheck_through_the_embedding():
    stencil = (0.3 * torch.randn(2, 2, 3, 3, dtype=torch.float64)).requires_grad_()
    h = torch.randn(1, 2, 5, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda s: apply_conv_exp(skew(embed_stencil(s, (5, 4))), h), (stencil,),
                                    fast_mode=True)


@settings(max_examples=25, deadline=None)
@given(
    lattice=st.lists(st.integers(1, 6), min_size=1, max_size=2).map(tuple),
    c=st.integers(1, 3),
    complex_=st.booleans(),
    scale=st.floats(0.0, 5.0),
    seed=st.integers(0, 2**16),
)
def test_property_exponential_is_an_isometry_with_exp_minus_a_as_inverse(lattice, c, complex_, scale, seed):
    A = skew(random_kernel(c, lattice, complex_, seed=seed, scale=scale))
    h = random_kernel(2, (c, *lattice), complex_, seed=seed + 1)[0]
    y = apply_conv_exp(A, h)
    assert torch.allclose(flat(y).norm(dim=1), flat(h).norm(dim=1), atol=1e-10, rtol=0)
    assert torch.allclose(apply_conv_exp(-A, y), h, atol=1e-10, rtol=0)
    assert torch.allclose(kernel_spectrum(A), -kernel_spectrum(A).conj().transpose(-2, -1), atol=1e-12, rtol=0)
