"""Stand-in for cctbx's ``sx_merging_ext`` C++ extension, which Debian bookworm does not build.

``cctbx.xfel.merge``'s ``group`` step calls ``get_hkl_chunks_cpp`` to hand every reflection to the
chunk (MPI rank) that owns its asymmetric-unit HKL. This is the same assignment in Python over flex
arrays: slower than the C++, but the step handles one table per rank once. Installed into the cctbx
image by recipes/cctbx.def.j2.
"""

from dials.array_family import flex

__all__ = ["get_hkl_chunks_cpp"]


def get_hkl_chunks_cpp(reflections, hkl_list, chunk_id_list, hkl_chunks):
    """Extend ``hkl_chunks[i]`` with the reflections whose HKL ``hkl_list`` maps to chunk ``i``.

    Args:
        reflections: A reflection table with a ``miller_index_asymmetric`` column.
        hkl_list: flex.miller_index of every HKL of the merging set.
        chunk_id_list: flex.int, the chunk of each HKL of ``hkl_list``.
        hkl_chunks: One reflection table per chunk, extended in place. Reflections whose HKL is
            not listed (outside the merging set) go to no chunk, as in the C++ extension.
    """
    chunk_of = {tuple(hkl): int(chunk) for hkl, chunk in zip(hkl_list, chunk_id_list)}
    owner = flex.int([chunk_of.get(tuple(hkl), -1) for hkl in reflections["miller_index_asymmetric"]])
    for chunk, table in enumerate(hkl_chunks):
        selected = reflections.select(owner == chunk)
        if len(selected):
            table.extend(selected)
