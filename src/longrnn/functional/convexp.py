"""The convolutional exponential: orthogonal / unitary convolutions on a periodic lattice, by FFT.

Source: M. O. Magnasco, "Convolutional unitary or orthogonal recurrent neural networks",
arXiv:2302.07396 (2023). The derivations used here are in ``shared/research/convexp.md`` §2.

Kernels live on a periodic lattice Λ = Z_N1 × ... × Z_Nd (d = 1 or 2 in this project) with c
channels: a kernel ``K`` has shape ``(c, c, N1, ..., Nd)`` and a state ``h`` has shape
``(batch, c, N1, ..., Nd)``. Circular convolution is

    (K ⊛ h)[o, n] = Σ_i Σ_m K[o, i, m] h[i, n - m]        (indices mod N)

and the DFT (torch's default, unnormalised forward) turns it into a c×c matrix per frequency k:
(K ⊛ h)^(k) = K̂(k) ĥ(k). Hence:

* adjoint: the operator of K† is the adjoint of that of K, with K†[o, i, x] = conj(K[i, o, -x]);
* `skew(P) = P - P†` is anti-symmetric (real P) or anti-Hermitian (complex P); every Â(k) is then
  a skew-Hermitian c×c matrix;
* the convolutional exponential exp_⊛(A) = δ + A + A⊛A/2! + ... has the spectrum
  Û(k) = expm(Â(k)) (one channel: the scalar exp), unitary at every k, so the operator U ⊛ · is
  orthogonal (real A) or unitary (complex A). A real A gives a real U.

The operator is never applied as a spatial convolution (exp_⊛ of a small stencil has full support);
`apply_spectrum` multiplies in Fourier space instead. Cost: building Û is d-dim FFTs of c² kernels
plus N c×c matrix exponentials; one application is c FFTs of the state plus N c×c products.
Gradients come from autograd through `torch.fft` and `torch.linalg.matrix_exp`.

For real kernels and states, ``onesided=True`` works on the half spectrum (`torch.fft.rfftn`),
which is valid because a real A has Â(-k) = conj(Â(k)).

Pure math: this module imports nothing from the package.
"""

from __future__ import annotations

import torch


def lattice_dims(kernel_or_state: torch.Tensor) -> tuple[int, ...]:
    """The spatial axes of a ``(c, c, *lattice)`` kernel or ``(batch, c, *lattice)`` state: all but 2."""
    return tuple(range(2, kernel_or_state.dim()))


def reflect(K: torch.Tensor) -> torch.Tensor:
    """K(x) -> K(-x mod N) on the lattice axes (a point reflection through the origin, not a flip)."""
    dims = lattice_dims(K)
    return torch.roll(torch.flip(K, dims), shifts=(1,) * len(dims), dims=dims)


def adjoint(K: torch.Tensor) -> torch.Tensor:
    """The kernel of the adjoint operator: K†[o, i, x] = conj(K[i, o, -x])."""
    return reflect(K).transpose(0, 1).conj()


def skew(P: torch.Tensor) -> torch.Tensor:
    """A = P - P†: an anti-symmetric (real P) or anti-Hermitian (complex P) kernel from a free one."""
    if P.dim() < 3 or P.shape[0] != P.shape[1]:
        raise ValueError(f"expected a kernel of shape (c, c, *lattice), got {tuple(P.shape)}")
    return P - adjoint(P)


def embed_stencil(stencil: torch.Tensor, lattice: tuple[int, ...]) -> torch.Tensor:
    """Place a ``(c, c, k, ..., k)`` stencil with odd k on the lattice, its centre at offset 0.

    Stencil entry ``j`` (per axis) is the kernel at offset ``j - k // 2``.
    """
    sizes = stencil.shape[2:]
    if len(sizes) != len(lattice):
        raise ValueError(f"a {len(sizes)}-D stencil does not fit a {len(lattice)}-D lattice {lattice}")
    if any(k % 2 == 0 or k > n for k, n in zip(sizes, lattice)):
        raise ValueError(f"stencil sizes must be odd and at most the lattice {lattice}, got {tuple(sizes)}")
    K = stencil.new_zeros(*stencil.shape[:2], *lattice)
    K[(slice(None), slice(None), *(slice(0, k) for k in sizes))] = stencil
    return torch.roll(K, shifts=tuple(-(k // 2) for k in sizes), dims=lattice_dims(K))


def kernel_spectrum(K: torch.Tensor, onesided: bool = False) -> torch.Tensor:
    """K̂(k) as a ``(*frequencies, c, c)`` tensor: the c×c matrix of the operator at each frequency.

    With ``onesided`` (real K only) the last lattice axis keeps N//2 + 1 frequencies.
    """
    dims = lattice_dims(K)
    fft = torch.fft.rfftn if onesided else torch.fft.fftn
    spectrum = fft(K, dim=dims)
    return spectrum.permute(*dims, 0, 1)


def conv_exp_spectrum(A: torch.Tensor, onesided: bool = False) -> torch.Tensor:
    """Û(k) = expm(Â(k)) per frequency, ``(*frequencies, c, c)``: the spectrum of exp_⊛(A)."""
    A_hat = kernel_spectrum(A, onesided)
    if A_hat.shape[-1] == 1:
        return torch.exp(A_hat)
    return torch.linalg.matrix_exp(A_hat)


def spectrum_to_kernel(spectrum: torch.Tensor, lattice: tuple[int, ...], real: bool, onesided: bool = False):
    """The spatial ``(c, c, *lattice)`` kernel of a ``(*frequencies, c, c)`` spectrum."""
    d = len(lattice)
    K_hat = spectrum.permute(d, d + 1, *range(d))
    dims = tuple(range(2, 2 + d))
    if onesided:
        return torch.fft.irfftn(K_hat, s=lattice, dim=dims)
    K = torch.fft.ifftn(K_hat, dim=dims)
    return K.real if real else K


def conv_exp(A: torch.Tensor) -> torch.Tensor:
    """The kernel U of exp_⊛(A), shape of A; real when A is real. Full support: use it to inspect, not to apply."""
    lattice = tuple(A.shape[2:])
    return spectrum_to_kernel(conv_exp_spectrum(A), lattice, real=not A.is_complex())


def apply_spectrum(spectrum: torch.Tensor, h: torch.Tensor, onesided: bool = False, real: bool | None = None):
    """K ⊛ h for the operator with spectrum ``(*frequencies, c, c)``, h ``(batch, c, *lattice)``.

    The result is real when ``real`` (default: h is real); pass ``real=False`` when a real h meets a
    complex kernel. ``onesided`` spectra (from a real kernel) need a real h.
    """
    real = not h.is_complex() if real is None else real
    dims = lattice_dims(h)
    lattice = tuple(h.shape[2:])
    h_hat = torch.fft.rfftn(h, dim=dims) if onesided else torch.fft.fftn(h, dim=dims)
    if spectrum.shape[-1] == 1:
        out_hat = h_hat * spectrum[..., 0, 0]
    else:
        # out[b, o, k] = Σ_i spectrum[k, o, i] h[b, i, k], with h's channel axis moved last
        moved = h_hat.movedim(1, -1).unsqueeze(-1)
        out_hat = (spectrum @ moved).squeeze(-1).movedim(-1, 1)
    if onesided:
        return torch.fft.irfftn(out_hat, s=lattice, dim=dims)
    out = torch.fft.ifftn(out_hat, dim=dims)
    return out.real if real else out


def apply_conv_exp(A: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """exp_⊛(A) ⊛ h, computed by FFT (real for real A and h)."""
    real = not (A.is_complex() or h.is_complex())
    return apply_spectrum(conv_exp_spectrum(A, onesided=real), h, onesided=real)


def dense_operator(K: torch.Tensor) -> torch.Tensor:
    """The ``(c·N, c·N)`` matrix D of h -> K ⊛ h on flattened ``(c, *lattice)`` states (row-major).

    Built from the definition, D[(o, n), (i, m)] = K[o, i, n - m], one lattice shift per site: for
    tests and the dense baselines of the benchmark, on small lattices only.
    """
    c, lattice = K.shape[0], tuple(K.shape[2:])
    dims = lattice_dims(K)
    n_sites = 1
    for n in lattice:
        n_sites *= n
    columns = []
    for m in range(n_sites):
        shift = []
        rest = m
        for n in reversed(lattice):
            shift.append(rest % n)
            rest //= n
        shifted = torch.roll(K, shifts=tuple(reversed(shift)), dims=dims)  # K[o, i, n - m] at n
        columns.append(shifted.reshape(c, c, n_sites))
    D = torch.stack(columns, dim=-1)  # (o, i, n, m)
    return D.permute(0, 2, 1, 3).reshape(c * n_sites, c * n_sites)
