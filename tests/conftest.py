"""Shared test set-up: seeded random numbers, floating-point errors raised, figures closed."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A seeded generator, so every failure reproduces."""
    return np.random.default_rng(20261122)


@pytest.fixture
def interrupt_after(monkeypatch):
    """``interrupt_after(n)`` makes the time step (Pennes with damage, called once per
    step) raise KeyboardInterrupt on its n-th call, as a Ctrl-C mid-run would;
    ``monkeypatch.undo()`` restores it."""
    import ablasim.simulation as simulation

    real = simulation.pennes_damage_step

    def arm(n_calls: int) -> None:
        calls = [0]

        def flaky(*args):
            calls[0] += 1
            if calls[0] == n_calls:
                raise KeyboardInterrupt
            return real(*args)

        monkeypatch.setattr(simulation, "pennes_damage_step", flaky)

    return arm


@pytest.fixture(autouse=True)
def _raise_on_fp_errors():
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        yield


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
