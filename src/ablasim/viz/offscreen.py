"""Which OpenGL window VTK renders into: the one place that chooses.

VTK's PyPI wheels (9.4 and later) carry an EGL and an OSMesa back-end and pick one at
run time; without a display the default X window fails ("bad X server connection"). So
before pyvista draws, :func:`choose_window` names the class in
``VTK_DEFAULT_OPENGL_WINDOW`` (read each time VTK makes a window, so it works even after
``vtk`` was imported):

- ``vtkEGLRenderWindow`` with ``EGL_PLATFORM=surfaceless`` when ``libEGL.so.1`` and a
  vendor driver load (Mesa's ``libEGL_mesa.so.0``, Debian ``libegl1 libegl-mesa0``, or
  NVIDIA's) — the future-proof path, since Mesa 25.1 drops OSMesa;
- else ``vtkOSOpenGLRenderWindow`` when ``libOSMesa`` loads (Debian ``libosmesa6``);
- an interactive window (``interactive=True``) keeps VTK's own choice when ``DISPLAY``
  or ``WAYLAND_DISPLAY`` is set.

A user's own ``VTK_DEFAULT_OPENGL_WINDOW`` wins. ``python -m ablasim.viz.offscreen``
renders a small scene and prints the class; ``make setup`` runs it and installs the
Debian packages when it fails.
"""

from __future__ import annotations

import ctypes
import os

from ..errors import AblasimError

EGL = "vtkEGLRenderWindow"
OSMESA = "vtkOSOpenGLRenderWindow"
FIX = (
    "install Mesa's EGL or OSMesa library (Debian/Ubuntu: `apt-get install libegl1 "
    "libosmesa6`; `make setup` does it when run as root), or set "
    "[output] pictures = false"
)


class NoOffscreenRendering(AblasimError):
    """Neither EGL nor OSMesa can be loaded: no 3D picture can be rendered."""


def _loads(*names: str) -> bool:
    """True when one of the shared libraries ``names`` loads."""
    for name in names:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def has_display() -> bool:
    """True when an X or Wayland display is named in the environment."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def choose_window(*, interactive: bool = False) -> str | None:
    """Set the environment so VTK renders off-screen; return the window class chosen
    (None: an interactive window on the display, VTK's own choice).

    Raises :class:`NoOffscreenRendering` (naming the fix) when neither back-end loads.
    """
    if interactive and has_display():
        return None
    os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")
    chosen = os.environ.get("VTK_DEFAULT_OPENGL_WINDOW")
    if chosen:
        return chosen
    # libEGL (glvnd) dispatches to a vendor: Mesa's, or NVIDIA's on a GPU machine
    if _loads("libEGL.so.1", "libEGL.so") and _loads("libEGL_mesa.so.0", "libEGL_nvidia.so.0"):
        os.environ.setdefault("EGL_PLATFORM", "surfaceless")
        chosen = EGL
    elif _loads("libOSMesa.so.8", "libOSMesa.so.6", "libOSMesa.so"):
        chosen = OSMESA
    else:
        raise NoOffscreenRendering(f"cannot render the 3D picture without a display: {FIX}")
    os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = chosen
    return chosen


def main() -> int:
    """Render a sphere off-screen; print the window class; 0 when the picture is drawn."""
    try:
        choose_window()
    except NoOffscreenRendering as exc:
        print(exc)
        return 1
    import pyvista as pv

    plotter = pv.Plotter(off_screen=True, window_size=(64, 64))
    plotter.add_mesh(pv.Sphere(), color="red")
    image = plotter.screenshot(return_img=True)
    name = plotter.ren_win.GetClassName()
    plotter.close()
    drawn = image is not None and (image[..., 0] > 128).sum() > 100
    print(f"{name}: {'renders' if drawn else 'draws nothing'}")
    return 0 if drawn else 1


if __name__ == "__main__":
    raise SystemExit(main())
