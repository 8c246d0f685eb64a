"""The physics of SimulateStills: still diffraction images of a known crystal, written as CBF files.

Owns the model (structure factors of a PDB file, random crystal orientations), the forward model of
one still (Ewald-sphere excitation error -> partiality, cctbx.xfel's rs model; Gaussian spots, flat background, Poisson
noise) and writing images with dxtbx's own CBF writer, so DIALS reads them back as
``FormatCBFFullStill``. Runs inside the ``cctbx`` image only (cctbx, dxtbx and numpy are imported in
the functions); the host never imports it. Must not know about the kernel, the DB or parameters models.

No nanoBragg (Debian's python3-cctbx does not build simtbx): the spots are rendered here, which is
enough for indexing, integration and merging to be checked against the model's intensities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

Matrix3 = Tuple[float, float, float, float, float, float, float, float, float]


@dataclass(frozen=True)
class Setup:
    """The experiment: beam, detector and how bright the crystal diffracts."""

    wavelength: float  # Å
    distance: float  # mm
    pixel_size: float  # mm
    image_size: int  # pixels per side (one square panel, beam at its centre)
    d_min: float  # Å: no reflection beyond this resolution is drawn
    excitation_sigma: float  # 1/Å: the partiality profile's width (rs: mosaicity, domain size, bandwidth)
    spot_sigma: float  # pixels
    mean_spot_photons: float  # photons of a fully recorded reflection of mean intensity
    background: float  # photons per pixel


@dataclass(frozen=True)
class Model:
    """The crystal: symmetry, cell and the model's intensities (asymmetric unit and all of P1)."""

    space_group: str  # Hermann-Mauguin symbol, e.g. "P 21 21 21"
    unit_cell: Tuple[float, float, float, float, float, float]
    intensities: Any  # cctbx.miller.array of I in the asymmetric unit (the truth)
    p1_indices: Any  # numpy (N, 3) int: every hkl of the sphere to d_min
    p1_intensities: Any  # numpy (N,) float, mean 1


def load_model(pdb_file: str, d_min: float) -> Model:
    """Return the model's symmetry and |F_calc|² to ``d_min`` (Å), expanded to P1 with Friedel mates."""
    import iotbx.pdb
    import numpy as np

    structure = iotbx.pdb.input(file_name=pdb_file).xray_structure_simple()
    f_calc = structure.structure_factors(d_min=d_min, anomalous_flag=False).f_calc()
    intensities = f_calc.intensities()
    sphere = intensities.expand_to_p1().generate_bijvoet_mates()
    values = np.array(sphere.data(), dtype=float)
    symmetry = structure.crystal_symmetry()
    cell = tuple(float(x) for x in symmetry.unit_cell().parameters())
    return Model(
        space_group=str(symmetry.space_group_info()),
        unit_cell=cell,  # type: ignore[arg-type]
        intensities=intensities,
        p1_indices=np.array(sphere.indices(), dtype=int),
        p1_intensities=values / values.mean(),
    )


def random_rotations(count: int, seed: int) -> List[Matrix3]:
    """Return ``count`` rotation matrices uniformly distributed over SO(3) (row-major)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rotations = []
    for q in rng.normal(size=(count, 4)):
        w, x, y, z = q / np.linalg.norm(q)  # a uniform unit quaternion
        matrix = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
            ]
        )
        rotations.append(matrix.ravel())
    return [tuple(float(v) for v in r) for r in rotations]  # type: ignore[misc]


def experiment_models(setup: Setup) -> Tuple[Any, Any]:
    """Return the dxtbx beam (along -z) and detector (one panel, normal to the beam, centred)."""
    from dxtbx.model import BeamFactory, DetectorFactory

    beam = BeamFactory.simple(setup.wavelength)
    centre = setup.image_size * setup.pixel_size / 2
    detector = DetectorFactory.simple(
        "PAD",
        setup.distance,
        (centre, centre),
        "+x",
        "-y",
        (setup.pixel_size, setup.pixel_size),
        (setup.image_size, setup.image_size),
        trusted_range=(-1, 1e7),
    )
    return beam, detector


def crystal_model(model: Model, rotation: Matrix3) -> Any:
    """Return the dxtbx crystal of ``model`` in the orientation ``rotation`` (U)."""
    from cctbx import crystal, sgtbx
    from dxtbx.model import Crystal
    from scitbx import matrix

    symmetry = crystal.symmetry(unit_cell=model.unit_cell, space_group_symbol=model.space_group)
    o = symmetry.unit_cell().orthogonalization_matrix()  # row-major; its columns are a, b, c
    a, b, c = (o[0], o[3], o[6]), (o[1], o[4], o[7]), (o[2], o[5], o[8])
    found = Crystal(a, b, c, sgtbx.space_group_info(model.space_group).group())
    found.set_U(matrix.sqr(rotation))
    return found


def spots(model: Model, setup: Setup, a_matrix: Sequence[float], beam: Any, panel: Any) -> Dict[str, Any]:
    """Return the reflections that light up the panel: pixel centroids, photons, hkl, partiality."""
    import numpy as np

    s0 = np.array(beam.get_s0())
    radius = 1.0 / setup.wavelength
    q = model.p1_indices @ np.array(a_matrix, dtype=float).reshape(3, 3).T
    s1 = s0 + q
    excitation = np.linalg.norm(s1, axis=1) - radius
    # Partiality of a still: the Lorentzian of cctbx.xfel's "rs" post-refinement model, so that merging
    # can refine it back; reflections recorded at under 5 % are left out (dark on the detector anyway).
    width_sq = setup.excitation_sigma**2
    partiality = width_sq / (2 * excitation**2 + width_sq)
    near = partiality >= 0.05
    partiality = partiality[near]
    rays = s1[near]
    origin = np.array(panel.get_origin())
    fast, slow = np.array(panel.get_fast_axis()), np.array(panel.get_slow_axis())
    normal = np.cross(fast, slow)
    towards = rays @ normal
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (origin @ normal) / towards
    hits = rays * scale[:, None] - origin
    x = (hits @ fast) / setup.pixel_size
    y = (hits @ slow) / setup.pixel_size
    size = setup.image_size
    on_panel = (scale > 0) & (x >= 0) & (x < size) & (y >= 0) & (y < size)
    photons = setup.mean_spot_photons * model.p1_intensities[near] * partiality
    return {
        "x": x[on_panel],
        "y": y[on_panel],
        "photons": photons[on_panel],
        "hkl": model.p1_indices[near][on_panel],
        "partiality": partiality[on_panel],
    }


def render(found: Dict[str, Any], setup: Setup, rng: Any) -> Any:
    """Return the image (numpy int32, slow x fast): background + Gaussian spots, Poisson noise."""
    import numpy as np

    size = setup.image_size
    expected = np.full((size, size), setup.background, dtype=float)
    half = max(2, math.ceil(4 * setup.spot_sigma))
    offsets = np.arange(-half, half + 1)
    norm = 1.0 / (2 * math.pi * setup.spot_sigma**2)
    for x, y, photons in zip(found["x"], found["y"], found["photons"]):
        cols = np.floor(x).astype(int) + offsets
        rows = np.floor(y).astype(int) + offsets
        cols, rows = cols[(cols >= 0) & (cols < size)], rows[(rows >= 0) & (rows < size)]
        dx = cols + 0.5 - x  # pixel centres
        dy = rows + 0.5 - y
        profile = np.exp(-0.5 * (dy[:, None] ** 2 + dx[None, :] ** 2) / setup.spot_sigma**2) * norm
        expected[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] += photons * profile
    return rng.poisson(expected).astype(np.int32)


class _Frames:
    """The little of an ImageSet that dxtbx's FullCBFWriter reads: models and data of still ``index``."""

    def __init__(self, path: str, beam: Any, detector: Any, data: Any) -> None:
        self._path, self._beam, self._detector, self._data = path, beam, detector, data

    def get_beam(self, index: Any = None) -> Any:
        return self._beam

    def get_detector(self, index: Any = None) -> Any:
        return self._detector

    def paths(self) -> List[str]:
        return [self._path]

    def reader(self) -> Any:
        return type("Reader", (), {"format_class": type("SimulateStills", (), {})})()

    def __getitem__(self, index: int) -> Any:
        return self._data


def write_cbf(path: str, image: Any, beam: Any, detector: Any) -> None:
    """Write one still as a full CBF with dxtbx's writer (read back as FormatCBFFullStill)."""
    from dxtbx.format.cbf_writer import FullCBFWriter
    from scitbx.array_family import flex

    data = flex.int(image.astype("int32"))  # a 2-D flex array (slow, fast)
    writer = FullCBFWriter(imageset=_Frames(path, beam, detector, data))
    writer.write_cbf(path, index=0)


def write_truth_mtz(model: Model, path: str) -> None:
    """Write the model's amplitudes (Fobs, SIGFobs) and intensities (I, SIGI) in the asymmetric unit.

    The sigmas are nominal (1 %): cctbx.xfel.merge takes a reference array only with its sigmas, and
    finds amplitudes by the label ``Fobs`` whatever its ``mtz_column_F`` says (it compares it lower-cased).
    """
    intensities = model.intensities.customized_copy(sigmas=model.intensities.data() * 0.01 + 1e-6)
    amplitudes = intensities.as_amplitude_array()
    amplitudes = amplitudes.customized_copy(sigmas=amplitudes.data() * 0.01 + 1e-6)
    dataset = amplitudes.as_mtz_dataset(column_root_label="Fobs")
    dataset.add_miller_array(intensities, column_root_label="I")
    dataset.mtz_object().write(path)
