"""The cctbx image's %test: the stand-ins and the CBF fix work, not only import.

Writes a small integer still with dxtbx's FullCBFWriter and reads it back (FormatCBFFullStill, same
pixels), runs the ``sx_merging_ext`` stand-in on a three-reflection table, and loads the merge
program's parameter definitions (which include the ``hopper`` stand-in). Prints one line per check.
"""

import os
import sys
import tempfile


def check_cbf_round_trip(folder: str) -> None:
    """A still written with the patched integer writer reads back with its pixels and models."""
    import dxtbx
    from dxtbx.format.cbf_writer import FullCBFWriter
    from dxtbx.model import BeamFactory, DetectorFactory
    from scitbx.array_family import flex

    beam = BeamFactory.simple(1.3)
    detector = DetectorFactory.simple("PAD", 100, (1.2, 1.2), "+x", "-y", (0.075, 0.075), (32, 32), (-1, 1e6))
    data = flex.int(range(32 * 32))
    data.reshape(flex.grid(32, 32))

    class Frames:
        def get_beam(self, index=None):
            return beam

        def get_detector(self, index=None):
            return detector

        def paths(self):
            return [path]

        def reader(self):
            return type("Reader", (), {"format_class": type("Check", (), {})})()

        def __getitem__(self, index):
            return data

    path = os.path.join(folder, "check.cbf")
    FullCBFWriter(imageset=Frames()).write_cbf(path, index=0)
    image = dxtbx.load(path)
    assert type(image).__name__ == "FormatCBFFullStill", type(image).__name__
    assert list(image.get_raw_data()) == list(data), "pixels differ after the round trip"
    assert abs(image.get_beam().get_wavelength() - 1.3) < 1e-9
    print("cbf round trip ok:", type(image).__name__)


def check_hkl_chunks() -> None:
    """Each reflection lands in the chunk of its HKL; HKLs outside the list are dropped."""
    from dials.array_family import flex
    from xfel.merging import get_hkl_chunks_cpp

    table = flex.reflection_table()
    table["miller_index_asymmetric"] = flex.miller_index([(1, 0, 0), (0, 1, 0), (2, 2, 2)])
    table["intensity"] = flex.double([1.0, 2.0, 3.0])
    chunks = [flex.reflection_table(), flex.reflection_table()]
    get_hkl_chunks_cpp(table, flex.miller_index([(0, 1, 0), (1, 0, 0)]), flex.int([0, 1]), chunks)
    assert list(chunks[0]["intensity"]) == [2.0] and list(chunks[1]["intensity"]) == [1.0]
    print("sx_merging_ext stand-in ok")


def check_merge_phil() -> None:
    """cctbx.xfel.merge's phil (with diffBragg's hopper scope included) parses."""
    import xfel.mono_simulation  # noqa: F401  (loads the xfel_mono_sim_ext stand-in)
    from xfel.merging.application.phil.phil import phil_scope

    assert phil_scope.extract().merging is not None
    print("merge phil ok")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        check_cbf_round_trip(tmp)
    check_hkl_chunks()
    check_merge_phil()
    sys.exit(0)
