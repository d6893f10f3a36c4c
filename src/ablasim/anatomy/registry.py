"""The phantoms by name (:data:`PHANTOMS`) and :func:`make_phantom`, which builds one
after checking every parameter name against the phantom function's signature."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from ..errors import ScenarioError, suggest
from ..grid import Grid
from .femur import long_bone
from .phantom import Phantom
from .simple import slab, sphere, uniform
from .spine import vertebra

__all__ = ["PHANTOMS", "make_phantom"]

PHANTOMS: dict[str, Callable[..., Phantom]] = {
    "vertebra": vertebra,
    "long_bone": long_bone,
    "uniform": uniform,
    "slab": slab,
    "sphere": sphere,
}


def make_phantom(name: str, grid: Grid, /, **params) -> Phantom:
    """Build a phantom by name, checking every parameter first.

    Parameters
    ----------
    name : str
        One of :data:`PHANTOMS`: ``"vertebra"``, ``"long_bone"``, ``"uniform"``,
        ``"slab"``, ``"sphere"``.
    grid : Grid
        The voxel grid.
    **params
        Keyword parameters of the phantom function (SI metres).

    Raises
    ------
    ScenarioError
        On an unknown phantom or parameter (with the closest names), a missing required
        parameter, or an invalid value (naming the parameter, the value and the fix).

    Examples
    --------
    >>> from ablasim.grid import Grid
    >>> ph = make_phantom("sphere", Grid.from_extent(0.02, 0.001), radius=0.005)
    >>> ph.structure_names()
    ('background', 'tumour')
    """
    if not isinstance(grid, Grid):
        raise ScenarioError(f"make_phantom needs a Grid, got {type(grid).__name__}")
    try:
        fn = PHANTOMS[name]
    except (KeyError, TypeError):
        raise ScenarioError(
            f"unknown phantom {name!r}{suggest(str(name), PHANTOMS)}; "
            f"choose one of {sorted(PHANTOMS)}"
        ) from None
    sig = inspect.signature(fn)
    allowed = [n for n, prm in sig.parameters.items() if prm.kind is prm.KEYWORD_ONLY]
    for key, value in params.items():
        if key not in allowed:
            raise ScenarioError(
                f"phantom {name!r} has no parameter {key!r} (given {value!r})"
                f"{suggest(key, allowed)}; its parameters are: {', '.join(allowed)}"
            )
    missing = [
        n
        for n, prm in sig.parameters.items()
        if prm.kind is prm.KEYWORD_ONLY and prm.default is prm.empty and n not in params
    ]
    if missing:
        raise ScenarioError(
            f"phantom {name!r} needs parameter(s) {', '.join(map(repr, missing))}; "
            f"e.g. make_phantom({name!r}, grid, {missing[0]}=0.005)"
        )
    return fn(grid, **params)
