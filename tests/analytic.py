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


# -- freezing: the two-phase Stefan problem (docs/physics.md §4a case 7) ---------------------


class NeumannStefan:
    """Exact solution of the two-phase Stefan (Neumann) problem with a SHARP front.

    A semi-infinite medium x > 0, all liquid at ``t_i`` at t = 0, whose surface x = 0 is
    held at ``t_s`` < ``t_f`` from t = 0. It freezes at the single temperature ``t_f``,
    releasing the latent heat ``latent_J_m3`` [J/m^3] at the front; conductivity and
    volumetric heat capacity are ``k_s``, ``rho_c_s`` in the frozen region (x < X) and
    ``k_l``, ``rho_c_l`` in the liquid (x > X); one density for both phases (no volume
    change), no perfusion, no heat source (docs/physics.md §4a case 7; Carslaw & Jaeger
    §11.2). The front is X(t) = 2 lambda sqrt(kappa_s t), with lambda the root of

        e^{-l^2}/erf(l) - (k_l/k_s) nu (T_i - T_f)/(T_f - T_s) e^{-nu^2 l^2}/erfc(nu l)
            = l sqrt(pi) L / (c_s (T_f - T_s)),       nu = sqrt(kappa_s / kappa_l),

    (L / c_s = latent_J_m3 / rho_c_s), solved with ``brentq``; the profiles are
    frozen  T = T_s + (T_f - T_s) erf(x / (2 sqrt(kappa_s t))) / erf(lambda),
    liquid  T = T_i - (T_i - T_f) erfc(x / (2 sqrt(kappa_l t))) / erfc(nu lambda).
    :meth:`temperature` and :meth:`front` also take complex arguments (for complex-step
    derivatives in the tests).
    """

    def __init__(self, *, t_s, t_i, t_f, k_s, k_l, rho_c_s, rho_c_l, latent_J_m3):
        if not t_s < t_f < t_i:
            raise ValueError("need t_s < t_f < t_i")
        self.t_s, self.t_i, self.t_f = float(t_s), float(t_i), float(t_f)
        self.k_s, self.k_l = float(k_s), float(k_l)
        self.rho_c_s, self.rho_c_l = float(rho_c_s), float(rho_c_l)
        self.latent_J_m3 = float(latent_J_m3)
        self.kappa_s = self.k_s / self.rho_c_s
        self.kappa_l = self.k_l / self.rho_c_l
        self.nu = np.sqrt(self.kappa_s / self.kappa_l)
        self.lam = neumann_lambda(
            self.rho_c_s * (self.t_f - self.t_s) / self.latent_J_m3,
            (self.k_l / self.k_s) * self.nu * (self.t_i - self.t_f) / (self.t_f - self.t_s),
            self.nu,
        )

    def residual(self, lam):
        """Left minus right side of the lambda equation (zero at :attr:`lam`)."""
        from scipy.special import erf

        d_s, d_l = self.t_f - self.t_s, self.t_i - self.t_f
        return (
            np.exp(-(lam**2)) / erf(lam)
            - (self.k_l / self.k_s) * self.nu * d_l / d_s * np.exp(-(self.nu * lam) ** 2)
            / erfc(self.nu * lam)
            - lam * np.sqrt(np.pi) * self.latent_J_m3 / (self.rho_c_s * d_s)
        )  # fmt: skip

    def front(self, t):
        """Front position X(t) = 2 lambda sqrt(kappa_s t) [m]."""
        return 2.0 * self.lam * np.sqrt(self.kappa_s * t)

    def frozen(self, x, t):
        """The frozen-region formula (valid for x <= X(t)) [°C]."""
        from scipy.special import erf

        z = x / (2.0 * np.sqrt(self.kappa_s * t))
        return self.t_s + (self.t_f - self.t_s) * erf(z) / erf(self.lam)

    def liquid(self, x, t):
        """The liquid-region formula (valid for x >= X(t)) [°C]."""
        z = x / (2.0 * np.sqrt(self.kappa_l * t))
        return self.t_i - (self.t_i - self.t_f) * erfc(z) / erfc(self.nu * self.lam)

    def temperature(self, x, t):
        """T(x, t) [°C] for x >= 0, t > 0."""
        x = np.asarray(x)
        return np.where(np.real(x) <= self.front(t), self.frozen(x, t), self.liquid(x, t))

    def mushy_width(self, t, t_solidus, t_liquidus):
        """Distance [m] over which this sharp-front profile spans t_solidus..t_liquidus:
        (T_f - T_solidus) / |dT/dx| on the frozen side plus (T_liquidus - T_f) / |dT/dx|
        on the liquid side, at the front. A measure of how far a mushy interval smears
        the front."""
        from scipy.special import erf

        g_s = (
            (self.t_f - self.t_s) / erf(self.lam) * np.exp(-(self.lam**2))
            / np.sqrt(np.pi * self.kappa_s * t)
        )  # fmt: skip
        g_l = (
            (self.t_i - self.t_f) / erfc(self.nu * self.lam) * np.exp(-((self.nu * self.lam) ** 2))
            / np.sqrt(np.pi * self.kappa_l * t)
        )  # fmt: skip
        return (self.t_f - t_solidus) / g_s + (t_liquidus - self.t_f) / g_l


class MushyStefan:
    """The same freezing problem as :class:`NeumannStefan`, but with the latent heat
    spread uniformly over a mushy interval ``t_sol``..``t_liq`` and the conductivity
    linear in the frozen fraction across it, as the solver models frozen tissue
    (src/ablasim/solvers/pennes.py ``enthalpy``): heat capacity dH/dT = ``rho_c_s`` below
    ``t_sol``, ``rho_c_l`` above ``t_liq`` and (rho_c_s + rho_c_l)/2 + L/(t_liq - t_sol)
    between; k = k_l + (k_s - k_l) f with the frozen fraction f = (t_liq - T)/(t_liq - t_sol).

    With constant surface and initial temperatures the problem is self-similar (Boltzmann):
    T = F(eta), eta = x / sqrt(t), with (k F')' = -(eta/2) C(F) F'. F is erf-like in the
    frozen zone, erfc-like in the liquid one, and in between it is integrated numerically
    (solve_ivp, rtol 1e-12, with F as the variable: d eta/dF = k/G, dG/dF = -C eta/2,
    G = k F'); the position eta0 of the solidus is shot for (brentq) so that the liquid
    far field is t_i. "Exact" to ~1e-9 relative: the reference the discrete enthalpy
    scheme converges to as h -> 0 (the sharp solution is only its t_liq - t_sol -> 0 limit).
    """

    def __init__(self, *, t_s, t_i, t_sol, t_liq, k_s, k_l, rho_c_s, rho_c_l, latent_J_m3):
        from scipy.integrate import solve_ivp
        from scipy.optimize import brentq
        from scipy.special import erf

        if not t_s < t_sol < t_liq < t_i:
            raise ValueError("need t_s < t_sol < t_liq < t_i")
        self.t_s, self.t_i, self.t_sol, self.t_liq = (float(v) for v in (t_s, t_i, t_sol, t_liq))
        self.k_s, self.k_l = float(k_s), float(k_l)
        self.kappa_s, self.kappa_l = k_s / rho_c_s, k_l / rho_c_l
        self.c_m = 0.5 * (rho_c_s + rho_c_l) + latent_J_m3 / (t_liq - t_sol)
        self._erf = erf

        def mushy(eta0, dense=False):
            """Integrate the mushy zone from the solidus at eta0; (eta1, G1) at the
            liquidus, or None where G falls to zero first (no physical profile)."""
            a = 2.0 * np.sqrt(self.kappa_s)
            b = (self.t_sol - self.t_s) / erf(eta0 / a)
            g0 = self.k_s * b * np.exp(-((eta0 / a) ** 2)) * 2.0 / (a * np.sqrt(np.pi))

            def rhs(f, y):
                return [self.k(f) / y[1], -0.5 * self.c_m * y[0]]

            def stalls(f, y):
                return y[1] - 1e-12 * g0

            stalls.terminal = True
            sol = solve_ivp(
                rhs, (self.t_sol, self.t_liq), [eta0, g0], method="DOP853", rtol=1e-12,
                atol=1e-14, events=stalls, dense_output=dense,
            )  # fmt: skip
            if sol.status != 0:
                return None
            return b, sol

        def miss(eta0):
            """Liquid far-field temperature minus t_i for a solidus at eta0."""
            got = mushy(eta0)
            if got is None:
                return self.t_sol - self.t_i  # never reaches the liquidus: far too cold
            _, sol = got
            eta1, g1 = sol.y[0, -1], sol.y[1, -1]
            a = 2.0 * np.sqrt(self.kappa_l)
            amp = g1 / self.k_l * a * np.sqrt(np.pi) / 2.0 * np.exp((eta1 / a) ** 2)
            return self.t_liq + amp * erfc(eta1 / a) - self.t_i

        # the sharp solution at the interval's midpoint as a first guess, then bracket
        sharp = NeumannStefan(
            t_s=t_s, t_i=t_i, t_f=0.5 * (t_sol + t_liq), k_s=k_s, k_l=k_l, rho_c_s=rho_c_s,
            rho_c_l=rho_c_l, latent_J_m3=latent_J_m3,
        )  # fmt: skip
        guess = 2.0 * sharp.lam * np.sqrt(sharp.kappa_s)
        lo, hi = 0.5 * guess, 1.5 * guess
        while miss(lo) < 0:
            lo *= 0.5
        while miss(hi) > 0:
            hi *= 1.5
        self.eta0 = brentq(miss, lo, hi, xtol=1e-15, rtol=1e-13)
        self.b, sol = mushy(self.eta0, dense=True)
        self._eta_of_f = sol.sol
        self.eta1, g1 = sol.y[0, -1], sol.y[1, -1]
        a = 2.0 * np.sqrt(self.kappa_l)
        self.amp = g1 / self.k_l * a * np.sqrt(np.pi) / 2.0 * np.exp((self.eta1 / a) ** 2)

    def k(self, f):
        """Conductivity at temperature f [W/m/K] (linear in the frozen fraction)."""
        frac = np.clip((self.t_liq - f) / (self.t_liq - self.t_sol), 0.0, 1.0)
        return self.k_l + (self.k_s - self.k_l) * frac

    def eta_of(self, temperature):
        """eta = x / sqrt(t) [m/s^0.5] of the isotherm ``temperature`` (t_s < it < t_i)."""
        from scipy.special import erfcinv, erfinv

        v = float(temperature)
        if v <= self.t_sol:
            return 2.0 * np.sqrt(self.kappa_s) * erfinv((v - self.t_s) / self.b)
        if v >= self.t_liq:
            return 2.0 * np.sqrt(self.kappa_l) * erfcinv((self.t_i - v) / self.amp)
        return float(self._eta_of_f(v)[0])

    def isotherm(self, temperature, t):
        """Position [m] of the isotherm ``temperature`` at time t."""
        return self.eta_of(temperature) * np.sqrt(t)

    def temperature(self, x, t):
        """T(x, t) [°C], x >= 0, t > 0."""
        from scipy.optimize import brentq

        eta = np.atleast_1d(np.asarray(x, dtype=float)) / np.sqrt(t)
        out = np.empty_like(eta)
        fro, liq = eta <= self.eta0, eta >= self.eta1
        out[fro] = self.t_s + self.b * self._erf(eta[fro] / (2.0 * np.sqrt(self.kappa_s)))
        out[liq] = self.t_i - self.amp * erfc(eta[liq] / (2.0 * np.sqrt(self.kappa_l)))
        for i in np.flatnonzero(~fro & ~liq):
            out[i] = brentq(
                lambda f, e=eta[i]: self._eta_of_f(f)[0] - e, self.t_sol, self.t_liq,
                xtol=1e-13,
            )  # fmt: skip
        return out.reshape(np.shape(x))
