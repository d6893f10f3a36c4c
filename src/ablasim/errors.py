"""The exception hierarchy of ablasim.

Every error a user can cause derives from :class:`AblasimError`; the command line turns
them into one clear line and a non-zero exit code (a traceback is a bug).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "AblasimError",
    "ScenarioError",
    "SimulationError",
    "StabilityError",
    "suggest",
]


class AblasimError(Exception):
    """Base class of every error raised on purpose by ablasim."""


class ScenarioError(AblasimError, ValueError):
    """Bad input: a scenario key, a tissue, a position, a property value, a file.

    The message names the key, quotes the bad value and says how to fix it.
    """


class StabilityError(AblasimError):
    """A requested time step exceeds the stability limit of the explicit scheme."""


class SimulationError(AblasimError):
    """The simulation failed while running (non-finite or runaway temperatures)."""


def suggest(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or a list of all choices."""
    choices = sorted(choices)
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    if close:
        return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
    return "; known: " + ", ".join(choices)
