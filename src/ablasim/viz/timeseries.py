"""Time-series pictures: temperatures against the limits, the power delivered (and the RF
impedance), and the events that changed the treatment as it ran.

Matplotlib's object-oriented API only (no pyplot state), so everything works headless with
the Agg backend. :func:`plot_timeseries` and :func:`plot_power` take ``ax=None`` and return
the axes they drew on; :func:`plot_timeseries_panels` puts both on one time axis and
returns the figure (what ``ablasim run`` saves as ``timeseries.png``). Each can save the
figure atomically.

Time is shown in minutes. Phases are shaded spans; events are vertical lines on every
panel with a short label beside them: thermocouple cut-offs solid red, RF generator pauses
dashed orange, any other kind dash-dotted grey. When events crowd together (an RF
generator can pause a dozen times), every line is drawn but only those far enough from the
last labelled one carry a label; the legend counts them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .figures import save_figure

__all__ = ["plot_power", "plot_timeseries", "plot_timeseries_panels"]

HOT_LIMIT_COLOR = "#d62728"
COLD_LIMIT_COLOR = "#1f77b4"
POWER_COLOR = "0.1"
IMPEDANCE_COLORS = ("#9467bd", "#8c564b", "#17becf", "#bcbd22")

# kind -> (legend name, short label on the line, colour, line style)
# (colours away from matplotlib's default cycle, which draws the temperature traces)
_EVENT_STYLE = {
    "cutoff": ("thermocouple cut-off", "cut-off", "#7f0000", "-"),
    "generator_pause": ("generator pause", "pause", "#b8860b", "--"),
}
_OTHER_EVENT = ("0.35", "-.")
# a label is left off closer than this fraction of the time axis to the previous label,
# or to the previous label of its own kind (a generator may pause a dozen times)
_LABEL_GAP = 0.03
_SAME_KIND_GAP = 0.15


@dataclass(frozen=True)
class _Event:
    time_s: float
    kind: str
    source: str | None
    detail: str
    thermocouples: tuple[str, ...] = ()


def _events(events: Sequence[Any] | None) -> list[_Event]:
    """Events as dicts (``report.json``'s ``events``) or objects with the same attributes,
    sorted by time."""
    out = []
    for n, e in enumerate(events or ()):
        get = e.get if isinstance(e, Mapping) else lambda k, d=None, e=e: getattr(e, k, d)
        t, kind = get("time_s"), get("kind")
        if t is None or kind is None:
            raise ValueError(
                f"events[{n}] needs 'time_s' and 'kind' (e.g. {{'time_s': 120.0, "
                f"'kind': 'cutoff', 'source': 'epidural', 'detail': '...'}}), got {e!r}"
            )
        tcs = get("thermocouples") or ()
        tcs = (tcs,) if isinstance(tcs, str) else tuple(str(x) for x in tcs)
        out.append(_Event(float(t), str(kind), get("source"), str(get("detail", "") or ""), tcs))
    return sorted(out, key=lambda ev: ev.time_s)


def _style(kind: str) -> tuple[str, str, str, str]:
    if kind in _EVENT_STYLE:
        return _EVENT_STYLE[kind]
    name = kind.replace("_", " ")
    return (name, name, *_OTHER_EVENT)


def _short_label(ev: _Event) -> str:
    """The label on an event's line: a cut-off names its thermocouples ("cut-off
    (epidural)"), other kinds their source."""
    label = _style(ev.kind)[1]
    who = ", ".join(ev.thermocouples) if ev.thermocouples else ev.source
    return f"{label} ({who})" if who else label


def _draw_events(ax: Axes, events: list[_Event], *, label_y: float = 0.9) -> list:
    """Vertical lines at the events (times in minutes on the axes), the first of each kind
    named in the legend with its count; short labels where there is room."""
    counts: dict[str, int] = {}
    for ev in events:
        counts[ev.kind] = counts.get(ev.kind, 0) + 1
    lo, hi = ax.get_xlim()
    span = (hi - lo) or 1.0
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white", alpha=0.85)]
    lines = []
    seen: set[str] = set()
    last_label = -np.inf
    last_of_kind: dict[str, float] = {}
    for ev in events:
        name, _, color, ls = _style(ev.kind)
        x = ev.time_s / 60.0
        legend = "_nolegend_"
        if ev.kind not in seen:
            seen.add(ev.kind)
            n = counts[ev.kind]
            legend = f"{name} ×{n}" if n > 1 else f"{name} at {ev.time_s:g} s"
        line = ax.axvline(x, color=color, ls=ls, lw=1.3, zorder=4, label=legend)
        line.set_gid(f"event:{ev.kind}")
        lines.append(line)
        if (x - last_label) / span >= _LABEL_GAP and (
            x - last_of_kind.get(ev.kind, -np.inf)
        ) / span >= _SAME_KIND_GAP:
            last_label = last_of_kind[ev.kind] = x
            ax.annotate(
                _short_label(ev), xy=(x, label_y), xycoords=ax.get_xaxis_transform(),
                xytext=(2.5, 0), textcoords="offset points", rotation=90, ha="left",
                va="top", fontsize=7.5, color=color, path_effects=halo, zorder=6,
                annotation_clip=True,
            )  # fmt: skip
    return lines


def _draw_phases(ax: Axes, phases, *, names: bool) -> None:
    for n, (name, start, end) in enumerate(phases or ()):
        a, b = float(start) / 60.0, float(end) / 60.0
        ax.axvspan(a, b, color="0.5", alpha=0.07 if n % 2 == 0 else 0.15, lw=0, zorder=0)
        if n > 0:
            ax.axvline(a, color="0.45", lw=0.8, ls=":", zorder=1)
        if names:
            ax.text(0.5 * (a + b), 0.985, name, transform=ax.get_xaxis_transform(),
                    ha="center", va="top", fontsize=8.5, color="0.25", clip_on=True)  # fmt: skip


def _times(time_s) -> np.ndarray:
    t = np.asarray(time_s, dtype=float)
    if t.ndim != 1:
        raise ValueError(f"time_s must be one-dimensional, got shape {t.shape}")
    return t


def _trace(name: str, values, t: np.ndarray, what: str) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.shape != t.shape:
        raise ValueError(
            f"{what} {name!r} has {v.shape[0] if v.ndim else 0} values but time_s has {t.shape[0]}"
        )
    return v


def _set_time_axis(ax: Axes, t: np.ndarray) -> None:
    if t.size:
        tmin = t / 60.0
        ax.set_xlim(tmin.min(), tmin.max() if tmin.max() > tmin.min() else tmin.min() + 1)


def _legend(ax: Axes, extra: Sequence[Axes] = ()) -> None:
    handles, labels = ax.get_legend_handles_labels()
    for other in extra:
        h, lab = other.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    ax.legend(handles, labels, loc="center left", bbox_to_anchor=(1.01 + 0.1 * bool(extra), 0.5),
              fontsize=8.5, frameon=False)  # fmt: skip


# -- temperatures ----------------------------------------------------------------------
def plot_timeseries(
    time_s,
    traces: Mapping[str, np.ndarray],
    *,
    hot_limit: float | None = 45.0,
    cold_limit: float | None = None,
    phases: Sequence[tuple[str, float, float]] | None = None,
    events: Sequence[Mapping[str, Any]] = (),
    ax: Axes | None = None,
    save: str | os.PathLike | None = None,
    title: str | None = None,
) -> Axes:
    """Thermocouple temperatures against time, with the safety limits, phases and events.

    Parameters
    ----------
    time_s : array_like, shape (n,)
        Times [s]; plotted in minutes.
    traces : mapping of str to array_like
        Temperature [°C] per thermocouple, each of length ``n``; the key is the legend name.
    hot_limit : float or None, default 45
        Upper limit [°C] (nerve safety), a dashed red line; None to omit.
    cold_limit : float, optional
        Lower limit [°C] for cryo, a dashed blue line.
    phases : sequence of (name, start_s, end_s), optional
        Treatment phases, shown as alternating shaded spans named at the top.
    events : sequence of dict, default ()
        What changed the treatment as it ran, as in ``report.json``'s ``events``:
        ``{"time_s", "kind" ("cutoff", "generator_pause", ...), "source", "detail"}``
        (objects with these attributes work too); a labelled vertical line each.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure.
    save : str or os.PathLike, optional
        Save the axes' figure there (format from the suffix), atomically.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on; event lines are the ``Line2D`` with gid ``"event:<kind>"``.

    Raises
    ------
    ValueError
        If a trace's length differs from ``time_s`` (the message names the trace) or an
        event lacks ``time_s`` or ``kind``.
    """
    if ax is None:
        ax = Figure(figsize=(9.0, 4.6), layout="constrained").add_subplot()
    _draw_temperatures(ax, time_s, traces, hot_limit=hot_limit, cold_limit=cold_limit,
                       phases=phases, events=_events(events))  # fmt: skip
    ax.set_xlabel("time [min]")
    if title:
        ax.set_title(title, fontsize=11)
    _legend(ax)
    if save is not None:
        save_figure(ax.figure, save)
    return ax


def _draw_temperatures(ax, time_s, traces, *, hot_limit, cold_limit, phases, events) -> None:
    t = _times(time_s)
    curves = [(name, _trace(name, v, t, "trace")) for name, v in traces.items()]
    _draw_phases(ax, phases, names=True)
    for name, v in curves:
        ax.plot(t / 60.0, v, lw=1.6, label=name, zorder=3)
    if hot_limit is not None:
        ax.axhline(hot_limit, color=HOT_LIMIT_COLOR, ls="--", lw=1.2, zorder=2,
                   label=f"hot limit {hot_limit:g} °C")  # fmt: skip
    if cold_limit is not None:
        ax.axhline(cold_limit, color=COLD_LIMIT_COLOR, ls="--", lw=1.2, zorder=2,
                   label=f"cold limit {cold_limit:g} °C")  # fmt: skip
    _set_time_axis(ax, t)
    ymin, ymax = ax.get_ylim()
    ax.set_ylim(ymin, ymax + 0.08 * (ymax - ymin))  # room for the phase names
    ax.set_ylabel("temperature [°C]")
    ax.grid(True, lw=0.4, alpha=0.5)
    _draw_events(ax, events, label_y=0.9)


# -- power -----------------------------------------------------------------------------
def plot_power(
    time_s,
    power,
    *,
    impedance: Mapping[str, np.ndarray] | None = None,
    phases: Sequence[tuple[str, float, float]] | None = None,
    events: Sequence[Mapping[str, Any]] = (),
    ax: Axes | None = None,
    save: str | os.PathLike | None = None,
    title: str | None = None,
) -> Axes:
    """The power the sources deposited against time, the RF impedance on a second axis.

    Parameters
    ----------
    time_s : array_like, shape (n,)
        Sample times [s]; plotted in minutes.
    power : array_like, shape (n,)
        Power deposited by all sources together [W] (``Result.power``): each sample holds
        the power of the step that ended at it, so it is drawn as steps back to the
        previous sample.
    impedance : mapping of str to array_like, optional
        Impedance [Ω] per RF source (``Result.telemetry["<name>_impedance_ohm"]``), on a
        twin axis at the right; NaN or infinite where the source was not running (gaps).
    phases : sequence of (name, start_s, end_s), optional
        Treatment phases, shaded and named.
    events : sequence of dict, default ()
        As for :func:`plot_timeseries`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure.
    save : str or os.PathLike, optional
        Save the axes' figure there (format from the suffix), atomically.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.axes.Axes
        The power axes; the impedance axes (if any) is its twin, ``ax.figure.axes[-1]``.

    Raises
    ------
    ValueError
        If ``power`` or an impedance trace differs in length from ``time_s``.
    """
    if ax is None:
        ax = Figure(figsize=(9.0, 3.6), layout="constrained").add_subplot()
    twin = _draw_power(ax, time_s, power, impedance=impedance, phases=phases,
                       events=_events(events), phase_names=True)  # fmt: skip
    ax.set_xlabel("time [min]")
    if title:
        ax.set_title(title, fontsize=11)
    _legend(ax, [twin] if twin is not None else ())
    if save is not None:
        save_figure(ax.figure, save)
    return ax


def _draw_power(ax, time_s, power, *, impedance, phases, events, phase_names) -> Axes | None:
    """Draw power (and impedance on a twin axis); return the twin or None."""
    t = _times(time_s)
    p = _trace("power", power, t, "trace")
    z = {}
    for name, values in (impedance or {}).items():
        v = _trace(name, values, t, "impedance trace").copy()
        v[~np.isfinite(v)] = np.nan  # inf: no current path (source off)
        if np.isfinite(v).any():
            z[name] = v
    _draw_phases(ax, phases, names=phase_names)
    ax.plot(t / 60.0, p, drawstyle="steps-pre", color=POWER_COLOR, lw=1.5,
            label="deposited power", zorder=3)  # fmt: skip
    _set_time_axis(ax, t)
    top = float(np.nanmax(p)) if np.isfinite(p).any() else 0.0
    ax.set_ylim(0.0, 1.18 * top if top > 0 else 1.0)  # room for the event labels
    ax.set_ylabel("deposited power [W]")
    ax.grid(True, lw=0.4, alpha=0.5)
    twin = None
    if z:
        twin = ax.twinx()
        for n, (name, v) in enumerate(z.items()):
            few = np.isfinite(v).sum() < 30  # dots, or a lone sample would not show
            twin.plot(t / 60.0, v, color=IMPEDANCE_COLORS[n % len(IMPEDANCE_COLORS)], lw=1.2,
                      marker="o" if few else None, ms=3, label=f"{name} impedance",
                      zorder=3)  # fmt: skip
        zmax = max(float(np.nanmax(v)) for v in z.values())
        twin.set_ylim(0.0, 1.18 * zmax if zmax > 0 else 1.0)
        twin.set_ylabel("impedance [Ω]", color=IMPEDANCE_COLORS[0])
        twin.tick_params(axis="y", colors=IMPEDANCE_COLORS[0])
    _draw_events(ax, events, label_y=0.97)
    return twin


# -- both ------------------------------------------------------------------------------
def plot_timeseries_panels(
    time_s,
    traces: Mapping[str, np.ndarray],
    power,
    *,
    impedance: Mapping[str, np.ndarray] | None = None,
    hot_limit: float | None = 45.0,
    cold_limit: float | None = None,
    phases: Sequence[tuple[str, float, float]] | None = None,
    events: Sequence[Mapping[str, Any]] = (),
    save: str | os.PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """Temperatures above, power (and RF impedance) below, on one time axis, with the
    events marked on both panels.

    Parameters are those of :func:`plot_timeseries` and :func:`plot_power`; ``title`` is
    the figure's.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes`` is [temperature, power] and, with an impedance, its twin axes.

    Raises
    ------
    ValueError
        As :func:`plot_timeseries` and :func:`plot_power`.
    """
    evs = _events(events)
    fig = Figure(figsize=(9.5, 6.8), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    _draw_temperatures(top, time_s, traces, hot_limit=hot_limit, cold_limit=cold_limit,
                       phases=phases, events=evs)  # fmt: skip
    twin = _draw_power(bottom, time_s, power, impedance=impedance, phases=phases,
                       events=evs, phase_names=False)  # fmt: skip
    bottom.set_xlabel("time [min]")
    _legend(top)
    _legend(bottom, [twin] if twin is not None else ())
    if title:
        fig.suptitle(title, fontsize=11)
    if save is not None:
        save_figure(fig, save)
    return fig
