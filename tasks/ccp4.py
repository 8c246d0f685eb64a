"""CCP4 structure solution: ``DimpleSolve`` (dimple, molecular replacement) and ``RunSHELXC`` (shelxc).

Upstream LUTE's ``lute/io/models/sfx_solve.py``: the same names, fields, flags and DB-backed
defaults. Both take ManipulateHKL's output (an MTZ for dimple, an XDS-format file for shelxc) when
no ``in_file`` is given; dimple's result is ``<out_dir>/final.mtz;<out_dir>/final.pdb`` and the
``setup_dimple_uglymol`` tasklet prepares the density viewer after it. shelxc reads its reflections
on standard input: argv cannot redirect, so ``tasks/bin/stdin_from`` opens the file and execs
shelxc. Both run in the ``ccp4`` image (S3DF only).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, Optional, Union

from pydantic import PositiveFloat, PositiveInt, ValidationInfo, field_validator

from lute_kernel.parameters import ThirdPartyParameters, on_worker, param, recorded_value
from lute_kernel.task import ThirdPartyTask
from lute_kernel.tasklets import Tasklet

STDIN_FROM = Path(__file__).resolve().parent / "bin" / "stdin_from"


def _opt(description: str, flag: str = "--", rename: Optional[str] = None) -> Any:
    return param(None, description, flag_type=flag, rename_param=rename)


def _manipulated_hkl(info: ValidationInfo) -> Optional[str]:
    recorded = recorded_value(info, "ManipulateHKL", "out_file")
    return str(recorded) if recorded else None


class DimpleSolve(ThirdPartyTask):
    """CCP4's dimple: molecular replacement and refinement of the merged data against a model."""

    image = "ccp4"
    aliases = ("DimpleSolver",)
    after = (
        Tasklet(
            "lute_kernel.sfx_tasklets:setup_dimple_uglymol",
            ("{{ out_dir }}/final.mtz", "{{ lute_config.experiment }}", "{{ in_file }}"),
            {"summary_root": "{{ lute_config.work_dir }}/../stats/summary"},
        ),
    )

    class Parameters(ThirdPartyParameters):
        """dimple's options; see https://ccp4.github.io/dimple/."""

        executable: str = param("/opt/ccp4/bin/dimple", "CCP4 Dimple for solving structures with MR.")
        in_file: str = param("", "Path to input mtz.", flag_type="")
        pdb: str = param("", "Path to a PDB.", flag_type="")
        out_dir: str = param("", "Output DIRECTORY.", flag_type="")
        mr_thresh: PositiveFloat = param(
            0.4, "Threshold for molecular replacement.", flag_type="--", rename_param="mr-when-r"
        )
        slow: Optional[bool] = param(False, "Perform more refinement.", flag_type="--")
        hklout: str = param("final.mtz", "Output mtz file name.", flag_type="--")
        xyzout: str = param("final.pdb", "Output PDB file name.", flag_type="--")
        icolumn: Optional[str] = _opt("Name for the I column.")
        sigicolumn: Optional[str] = _opt("Name for the Sig<I> column.")
        fcolumn: Optional[str] = _opt("Name for the F column.")
        sigfcolumn: Optional[str] = _opt("Name for the Sig<F> column.")
        libin: Optional[str] = _opt("Ligand descriptions for refmac (LIBIN).")
        refmac_key: Optional[str] = _opt("Extra Refmac keywords to use in refinement.", rename="refmac-key")
        free_r_flags: Optional[str] = _opt("Path to a mtz file with freeR flags.", rename="free-r-flags")
        freecolumn: Optional[Union[int, float]] = _opt("Refree column with an optional value.")
        img_format: Optional[str] = _opt("Format of generated images. (png, jpeg, none).", flag="-", rename="f")
        white_bg: bool = param(
            False, "Use a white background in Coot and in images.", flag_type="--", rename_param="white-bg"
        )
        no_cleanup: bool = param(False, "Retain intermediate files.", flag_type="--", rename_param="no-cleanup")
        no_blob_search: bool = param(
            False, "Do not search for unmodelled blobs.", flag_type="--", rename_param="no-blob-search"
        )
        anode: bool = param(False, "Use SHELX/AnoDe to find peaks in the anomalous map.", flag_type="--")
        no_hetatm: bool = param(
            False, "Remove heteroatoms from the given model.", flag_type="--", rename_param="no-hetatm"
        )
        rigid_cycles: Optional[PositiveInt] = _opt("Cycles of rigid-body refinement.", rename="rigid-cycles")
        jelly: Optional[PositiveInt] = _opt("Number of cycles of jelly-body refinement to perform.")
        restr_cycles: Optional[PositiveInt] = _opt("Cycles of refmac final refinement.", rename="restr-cycles")
        lim_resolution: Optional[PositiveFloat] = _opt("Limit the final resolution.", rename="reso")
        weight: Optional[str] = _opt("The refmac matrix weight.")
        mr_prog: Optional[str] = _opt("Molecular replacement program. phaser or molrep.", rename="mr-prog")
        mr_num: Optional[Union[str, int]] = _opt("Molecules for molecular replacement.", rename="mr-num")
        mr_reso: Optional[PositiveFloat] = _opt("High resolution for MR (>10: eLLG).", rename="mr-reso")
        itof_prog: Optional[str] = _opt("Amplitudes from truncate or ctruncate.", rename="ItoF-prog")

        @field_validator("in_file")
        @classmethod
        def _in_file_from_get_hkl(cls, in_file: str, info: ValidationInfo) -> str:
            return (_manipulated_hkl(info) if in_file == "" else None) or in_file

        @field_validator("out_dir")
        @classmethod
        def _out_dir_next_to_mtz(cls, out_dir: str, info: ValidationInfo) -> str:
            mtz = _manipulated_hkl(info) if out_dir == "" else None
            return os.path.dirname(mtz) if mtz else out_dir

        def result_from_params(self) -> Optional[str]:
            """Upstream's result: ``<out_dir>/final.mtz;<out_dir>/final.pdb``."""
            return f"{self.out_dir}/final.mtz;{self.out_dir}/final.pdb" if self.out_dir else ""


class RunSHELXC(ThirdPartyTask):
    """CCP4's SHELXC: prepares SHELXD/SHELXE input from reflections (``shelxc xx <in_file``)."""

    image = "ccp4"
    aliases = ("SHELXCRunner",)

    class Parameters(ThirdPartyParameters):
        """shelxc's stem and its input; see https://www.ccp4.ac.uk/html/crank.html."""

        executable: str = param("/opt/ccp4/bin/shelxc", "CCP4 SHELXC. Generates input files for SHELXD/SHELXE.")
        placeholder: str = param("xx", "Placeholder filename stem.", flag_type="")
        in_file: str = param("", "Input file for SHELXC with reflections AND proper records.", flag_type="")

        @field_validator("in_file")
        @classmethod
        def _redirected_input(cls, in_file: str, info: ValidationInfo) -> str:
            if in_file == "":
                in_file = _manipulated_hkl(info) or ""
            if not in_file:
                if on_worker(info):
                    return in_file
                raise ValueError("no in_file given and no valid ManipulateHKL output recorded (an XDS-format file)")
            return in_file if in_file.startswith("<") else f"<{in_file}"  # upstream's `shelxc xx <file`

    @classmethod
    def build_argv(cls, params: Any) -> List[str]:
        """``stdin_from FILE shelxc STEM``: the file becomes shelxc's standard input."""
        assert isinstance(params, RunSHELXC.Parameters)
        return [str(STDIN_FROM), params.in_file[1:], params.executable, params.placeholder]
