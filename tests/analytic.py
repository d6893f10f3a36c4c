"""Exact solutions of the Pennes equation used by the tests (docs/physics.md §4a).

theta = T - T_a; W = omega_b rho_b c_b; m = sqrt(W / k); kappa = k / (rho c).
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfc


def slab_steady(x, theta0, m, length):
    """Steady perfused slab 0..length, theta(0) = theta0, theta(length) = 0."""
    return theta0 * np.sinh(m * (length - x)) / np.sinh(m * length)


def two_layer_steady(x, theta0, length, s, k1, m1, k2, m2):
    """Steady perfused two-layer slab: layer 1 on 0..s, layer 2 on s..length.

    theta(0) = theta0, theta(length) = 0; theta and k theta' continuous at s.
    With m -> 0 in a layer (no perfusion) use a tiny m (the limit is linear).
    """
    # theta1 = theta0 cosh(m1 x) + B sinh(m1 x); theta2 = C sinh(m2 (L - x))
    a = np.array(
        [
            [np.sinh(m1 * s), -np.sinh(m2 * (length - s))],
            [k1 * m1 * np.cosh(m1 * s), k2 * m2 * np.cosh(m2 * (length - s))],
        ]
    )
    b = np.array([-theta0 * np.cosh(m1 * s), -k1 * m1 * theta0 * np.sinh(m1 * s)])
    B, C = np.linalg.solve(a, b)
    th1 = theta0 * np.cosh(m1 * x) + B * np.sinh(m1 * x)
    th2 = C * np.sinh(m2 * (length - x))
    return np.where(x <= s, th1, th2)


def heated_sphere(r, q, w, m, a):
    """Steady temperature rise of a sphere (radius a) heated uniformly at q [W/m^3]."""
    r = np.asarray(r, dtype=float)
    ma = m * a
    mr = np.maximum(m * r, 1e-300)
    inner = (q / w) * (1.0 - (1.0 + ma) * np.exp(-ma) * np.where(r > 0, np.sinh(mr) / mr, 1.0))
    outer = (q / w) * (ma * np.cosh(ma) - np.sinh(ma)) * np.exp(-mr) / mr
    return np.where(r <= a, inner, outer)


def slab_series(x, t, theta_i, kappa, length, terms=401):
    """Finite slab without perfusion, initial theta_i, faces at theta = 0 (Fourier series)."""
    x = np.asarray(x, dtype=float)
    out = np.zeros_like(x)
    for n in range(1, 2 * terms, 2):
        kn = n * np.pi / length
        out += 4 * theta_i / (n * np.pi) * np.sin(kn * x) * np.exp(-kappa * kn * kn * t)
    return out


def semi_infinite_step(x, t, theta0, kappa, beta, m):
    """Perfused semi-infinite medium, surface raised by theta0 at t = 0 (§4a case 5)."""
    s = x / (2 * np.sqrt(kappa * t))
    r = np.sqrt(beta * t)
    return 0.5 * theta0 * (np.exp(-m * x) * erfc(s - r) + np.exp(m * x) * erfc(s + r))


def observed_order(spacings, errors) -> float:
    """Least-squares slope of log(error) against log(spacing)."""
    return float(np.polyfit(np.log(spacings), np.log(errors), 1)[0])


def neumann_lambda(stefan_s, ratio_term, nu):
    """Root lambda of the two-phase Neumann (Stefan) problem (docs/physics.md §4a case 7):

    e^{-l^2}/erf(l) - ratio_term * e^{-nu^2 l^2}/erfc(nu l) = l sqrt(pi) / stefan_s

    with stefan_s = c_s (T_f - T_s) / L and ratio_term = (k_l/k_s) nu (T_i - T_f)/(T_f - T_s).
    """
    from scipy.optimize import brentq
    from scipy.special import erf

    def f(lam):
        return (
            np.exp(-(lam**2)) / erf(lam)
            - ratio_term * np.exp(-(nu**2) * lam**2) / erfc(nu * lam)
            - lam * np.sqrt(np.pi) / stefan_s
        )

    return brentq(f, 1e-6, 5.0)
