"""The fly visual system connectome (fib25-fib19 v2.2) on a hexagonal lattice, read from the ``flyvis`` wheel.

Why read the file and not call flyvis: importing ``flyvis`` sets torch's default device, loads a ``.env``,
creates cache directories and imports heavy analysis code. gnnlab only needs the JSON file that the wheel
ships (``flyvis/connectome/fib25-fib19_v2.2.json``), so it finds it through the installed distribution's
file list (:func:`importlib.metadata.distribution`), which reads package metadata and never executes flyvis.

The file describes 65 cell types and 605 edge types. Every type tiles a hexagonal lattice of columns
(u, v) with |u|, |v|, |u + v| <= extent, at a stride (u_stride, v_stride); an edge type (source type,
target type, sign alpha, offsets [[du, dv], n_syn]) connects each source cell at (u, v) to the target cell
at (u + du, v + dv) when that cell exists, with that synapse count. As in flyvis (``n_syn_fill = 1``), an
edge type reported at three or more offsets also gets every lattice offset inside the convex hull of the
reported ones, with one synapse: the reconstruction's gaps are not treated as absent connections.
"""

import dataclasses
import importlib.metadata
import json
from functools import cache
from pathlib import Path

import numpy as np
from matplotlib.path import Path as Polygon
from scipy.spatial import ConvexHull

from gnnlab.errors import ConfigError

DISTRIBUTION = "flyvis"
CONNECTOME_FILE = "flyvis/connectome/fib25-fib19_v2.2.json"
INSTALL_HINT = 'pip install --no-deps flyvis==1.2.0 (or pip install "gnnlab[flyvis]")'
N_SYN_FILL = 1.0  # synapses assumed at a lattice offset inside a reported edge type's hull (flyvis default)


def connectome_path() -> Path:
    """Where the installed flyvis wheel put the connectome JSON, found without importing flyvis."""
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"system 'flyvis' needs the flyvis connectome file: {INSTALL_HINT}") from None
    path = Path(str(distribution.locate_file(CONNECTOME_FILE)))
    if not path.is_file():
        raise ConfigError(f"the installed flyvis has no {CONNECTOME_FILE}; reinstall it: {INSTALL_HINT}")
    return path


@dataclasses.dataclass(frozen=True)
class Connectome:
    """Cells and synapses of the lattice; arrays are numpy, edges index cells."""

    type_names: tuple[str, ...]  # the 65 cell types, in file order
    input_types: tuple[str, ...]  # photoreceptors R1-R8, which receive the visual input
    cell_type: np.ndarray  # (N,) int, index into type_names
    u: np.ndarray  # (N,) int lattice column
    v: np.ndarray  # (N,) int
    source: np.ndarray  # (E,) int64 presynaptic cell
    target: np.ndarray  # (E,) int64 postsynaptic cell
    edge_type: np.ndarray  # (E,) int, index into the file's 605 edge types
    edge_sign: np.ndarray  # (E,) float, +1 excitatory, -1 inhibitory (per edge type)
    n_syn: np.ndarray  # (E,) float synapse count
    n_edge_types: int

    @property
    def n_cells(self) -> int:
        return len(self.cell_type)

    def input_cells(self) -> np.ndarray:
        """Indices of the photoreceptor cells, in cell order."""
        inputs = [self.type_names.index(name) for name in self.input_types]
        return np.flatnonzero(np.isin(self.cell_type, inputs))


def _hull_offsets(offsets: list[list], fill: float) -> list[tuple[int, int, float]]:
    """The reported offsets plus every integer offset inside their convex hull, with ``fill`` synapses
    (flyvis's ``fill_hull``: the same joggled hull, slightly inflated so boundary points count)."""
    reported = [(int(du), int(dv), float(n)) for (du, dv), n in offsets]
    if fill <= 0 or len(reported) < 3:
        return reported
    points = np.array([(du, dv) for du, dv, _ in reported])
    hull = ConvexHull((1 + 1e-6) * points, False, "QJ")
    grid = (
        np.mgrid[points[:, 0].min() : points[:, 0].max() + 1, points[:, 1].min() : points[:, 1].max() + 1]
        .reshape(2, -1)
        .T
    )
    inside = grid[Polygon(points[hull.vertices]).contains_points(grid)]
    known = {(du, dv) for du, dv, _ in reported}
    return reported + [(int(du), int(dv), fill) for du, dv in inside if (du, dv) not in known]


@cache
def _spec() -> dict:
    return json.loads(connectome_path().read_text())


def lattice_cells(extent: int) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Type names and, per cell, (type, u, v) of every cell within ``extent`` columns of the centre."""
    if extent < 0:
        raise ConfigError(f"extent must be >= 0, got {extent}")
    spec = _spec()
    cell_type, us, vs = [], [], []
    for t, node in enumerate(spec["nodes"]):
        pattern, (su, sv) = node["pattern"]
        if pattern != "stride":
            raise ConfigError(f"connectome node {node['name']}: pattern {pattern!r} is not supported")
        for u in range(-extent, extent + 1):
            for v in range(max(-extent, -extent - u), min(extent, extent - u) + 1):
                if u % su == 0 and v % sv == 0:
                    cell_type.append(t)
                    us.append(u)
                    vs.append(v)
    names = tuple(node["name"] for node in spec["nodes"])
    return names, np.array(cell_type), np.array(us), np.array(vs)


def build_connectome(extent: int) -> Connectome:
    """The network of every cell within ``extent`` columns of the centre (flyvis's construction)."""
    spec = _spec()
    names, cell_type_arr, u_arr, v_arr = lattice_cells(extent)
    # lookup[t, u + extent, v + extent]: the cell of type t in column (u, v), or -1 where there is none
    width = 2 * extent + 1
    lookup = np.full((len(names), width, width), -1, dtype=np.int64)
    lookup[cell_type_arr, u_arr + extent, v_arr + extent] = np.arange(len(cell_type_arr))
    by_type = {t: np.flatnonzero(cell_type_arr == t) for t in range(len(names))}
    source, target, kinds, signs, counts = [], [], [], [], []
    for k, edge in enumerate(spec["edges"]):
        src_t, tar_t = names.index(edge["src"]), names.index(edge["tar"])
        cells = by_type[src_t]
        for du, dv, n in _hull_offsets(edge["offsets"], N_SYN_FILL):
            tu, tv = u_arr[cells] + du + extent, v_arr[cells] + dv + extent
            inside = (tu >= 0) & (tu < width) & (tv >= 0) & (tv < width)
            post = np.full(len(cells), -1, dtype=np.int64)
            post[inside] = lookup[tar_t, tu[inside], tv[inside]]
            found = post >= 0
            source.append(cells[found])
            target.append(post[found])
            kinds.append(np.full(found.sum(), k))
            signs.append(np.full(found.sum(), float(edge["alpha"])))
            counts.append(np.full(found.sum(), n))
    return Connectome(
        type_names=names,
        input_types=tuple(spec["input_units"]),
        cell_type=cell_type_arr,
        u=u_arr,
        v=v_arr,
        source=np.concatenate(source).astype(np.int64),
        target=np.concatenate(target).astype(np.int64),
        edge_type=np.concatenate(kinds),
        edge_sign=np.concatenate(signs),
        n_syn=np.concatenate(counts),
        n_edge_types=len(spec["edges"]),
    )
