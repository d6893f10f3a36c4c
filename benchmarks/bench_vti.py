"""Writing and reading the run's fields (``fields.vti``): ablasim.vtkio against bare VTK.

Issue #14 asked that, once VTK is a dependency (pyvista brings it), the ``.vti`` files be
written and read through it unless our own writer was measurably faster on the demo. It
was not: on the fields a ``vertebra-demo`` run writes (96 x 128 x 96 voxels: seven float
fields stored as Float32 and the UInt8 label map, zlib level 1, appended binary), the
hand-written writer took 0.176 s against VTK's 0.174 s and its reader 0.086 s against
VTK's 0.065 s, for files of the same size (4.73 / 4.75 MB), medians of 5 in one process.
So :mod:`ablasim.vtkio` now calls ``vtkXMLImageDataWriter`` / ``vtkXMLImageDataReader``.

This script keeps measuring it: :func:`ablasim.vtkio.write_vti` / :func:`read_vti` (the
checks, the conversion to VTK's point order, the atomic rename) against the bare VTK
calls on the same arrays, write and read times and file sizes, and checks that each
reader reads the other's file to the same values.

Run:  python benchmarks/bench_vti.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import vtk
from vtk.util import numpy_support

from ablasim.grid import Grid
from ablasim.vtkio import read_vti, write_vti


def demo_fields(shape, seed=0):
    """Smooth fields like a run's (a hot ball on 37 °C), plus a label map."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    r2 = x**2 + (y - 0.2) ** 2 + z**2
    hot = 37.0 + 60.0 * np.exp(-r2 / 0.05)
    fields = {
        "temperature_C": hot - 5.0,
        "max_temperature_C": hot,
        "min_temperature_C": np.full(shape, 37.0),
        "cem43_min": np.exp(np.clip(hot - 43.0, 0, 30)),
        "arrhenius_omega": np.clip(hot - 50.0, 0, None) ** 2,
        "perfusion_W_m3K": np.where(hot > 60, 0.0, 2000.0 + rng.random(shape)),
        "ablation_zone": (hot > 60).astype(np.uint8),
        "labels": (np.abs(x * 4).astype(np.uint8) + (y > 0)).astype(np.uint8),
    }
    return fields


def write_with_vtk(path: Path, grid: Grid, fields) -> None:
    img = vtk.vtkImageData()
    img.SetDimensions(*grid.shape)
    img.SetOrigin(*(v * 1e3 for v in grid.origin))
    img.SetSpacing(*(grid.spacing * 1e3,) * 3)
    keep = []
    for name, a in fields.items():
        a = np.asarray(a)
        a = a.astype(np.float32) if a.dtype.kind == "f" else a.astype(np.uint8)
        flat = np.ravel(a, order="F")  # VTK's x-fastest point order
        keep.append(flat)
        arr = numpy_support.numpy_to_vtk(flat, deep=False)
        arr.SetName(name)
        img.GetPointData().AddArray(arr)
    w = vtk.vtkXMLImageDataWriter()
    w.SetFileName(str(path))
    w.SetInputData(img)
    w.SetDataModeToAppended()
    w.EncodeAppendedDataOff()
    w.SetCompressorTypeToZLib()
    w.GetCompressor().SetCompressionLevel(1)
    if not w.Write():
        raise RuntimeError("vtkXMLImageDataWriter failed")


def read_with_vtk(path: Path) -> dict[str, np.ndarray]:
    r = vtk.vtkXMLImageDataReader()
    r.SetFileName(str(path))
    r.Update()
    img = r.GetOutput()
    dims = img.GetDimensions()
    pd = img.GetPointData()
    out = {}
    for i in range(pd.GetNumberOfArrays()):
        a = pd.GetArray(i)
        out[a.GetName()] = numpy_support.vtk_to_numpy(a).reshape(dims, order="F")
    return out


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="a small grid (to test the harness)")
    args = ap.parse_args(argv)
    shape = (24, 32, 24) if args.quick else (96, 128, 96)
    grid = Grid(shape, 0.5e-3, origin=tuple(-0.5e-3 * (n - 1) / 2 for n in shape))
    fields = demo_fields(shape)
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "ours.vti", Path(tmp) / "vtk.vti"
        write_vti(ours, grid, fields)  # warm both (imports, first allocation)
        write_with_vtk(theirs, grid, fields)
        res = {
            "write_ours_s": _median_time(lambda: write_vti(ours, grid, fields), args.repeats),
            "write_vtk_s": _median_time(lambda: write_with_vtk(theirs, grid, fields), args.repeats),
            "read_ours_s": _median_time(lambda: read_vti(ours), args.repeats),
            "read_vtk_s": _median_time(lambda: read_with_vtk(theirs), args.repeats),
            "size_ours_MB": ours.stat().st_size / 1e6,
            "size_vtk_MB": theirs.stat().st_size / 1e6,
        }
        # each reader reads the other's file to the same values
        _, a = read_vti(theirs)
        b = read_with_vtk(ours)
        for name, v in fields.items():
            want = np.asarray(v, dtype=np.float32 if np.asarray(v).dtype.kind == "f" else None)
            np.testing.assert_array_equal(a[name], want, err_msg=name)
            np.testing.assert_array_equal(b[name], want, err_msg=name)
    n = np.prod(shape)
    print(f"{shape[0]}x{shape[1]}x{shape[2]} = {n / 1e6:.2f} M voxels, {len(fields)} fields")
    print(f"  write  vtkio {res['write_ours_s']:.3f} s   bare VTK {res['write_vtk_s']:.3f} s")
    print(f"  read   vtkio {res['read_ours_s']:.3f} s   bare VTK {res['read_vtk_s']:.3f} s")
    print(f"  size   vtkio {res['size_ours_MB']:.2f} MB  bare VTK {res['size_vtk_MB']:.2f} MB")
    return res


if __name__ == "__main__":
    main()
