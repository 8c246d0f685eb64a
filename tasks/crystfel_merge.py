"""CrystFEL merging and its products: ``MergePartialator``, ``CompareHKL``, ``ManipulateHKL``.

Upstream LUTE's ``lute/io/models/sfx_merge.py``: the same names, fields, flags and DB-backed
defaults. partialator merges the stream ConcatenateStreamFiles recorded; compare_hkl (figures of
merit, summarised after it runs by the ``compare_hkl_fom_summary`` tasklet) and get_hkl (e.g. to
MTZ for DimpleSolve) take MergePartialator's output, its symmetry, and IndexCrystFEL's cell file,
so a section may name none of them. All run in the ``crystfel`` image (S3DF only).
"""

from __future__ import annotations

from typing import List, Optional, Union

from pydantic import ValidationInfo, field_validator

from lute_kernel.parameters import ThirdPartyParameters, param, recorded_value
from lute_kernel.task import ThirdPartyTask
from lute_kernel.tasklets import Tasklet

from ._upstream_defaults import default_nthreads, stem


def _opt(description: str, flag: str = "--", rename: Optional[str] = None) -> object:
    return param(None, description, flag_type=flag, rename_param=rename)


def _merged_hkl(info: ValidationInfo) -> Optional[str]:
    recorded = recorded_value(info, "MergePartialator", "out_file")
    return str(recorded) if recorded else None


def _indexing_cell(cell_file: str, info: ValidationInfo) -> str:
    # Upstream reads IndexCrystFEL's cell_file from any row (valid_only=False); recorded_value reads
    # valid rows, which an IndexCrystFEL feeding a merge always is.
    recorded = recorded_value(info, "IndexCrystFEL", "cell_file") if cell_file == "" else None
    return str(recorded) if recorded else cell_file


class MergePartialator(ThirdPartyTask):
    """CrystFEL's partialator: scale and merge the indexed stream into an .hkl file."""

    image = "crystfel"
    aliases = ("PartialatorMerger",)

    class Parameters(ThirdPartyParameters):
        """partialator's options; see CrystFEL's manual-partialator."""

        long_flags_use_eq = True

        executable: str = param("/opt/crystfel/bin/partialator", "CrystFEL's Partialator binary.")
        in_file: Optional[str] = param("", "Path to input stream.", flag_type="-", rename_param="i")
        out_file: str = param("", "Path to output file.", flag_type="-", rename_param="o", is_result=True)
        symmetry: str = param(..., "Point group symmetry.", flag_type="--")
        niter: Optional[int] = _opt("Number of cycles of scaling and post-refinement.", flag="-", rename="n")
        no_scale: Optional[bool] = _opt("Disable scaling.", rename="no-scale")
        no_Bscale: Optional[bool] = _opt("Disable Debye-Waller part of scaling.", rename="no-Bscale")
        no_pr: Optional[bool] = _opt("Disable orientation model.", rename="no-pr")
        no_deltacchalf: Optional[bool] = _opt("Disable rejection based on deltaCC1/2.", rename="no-deltacchalf")
        model: str = param("unity", "Partiality model. Options: xsphere, unity, offset, ggpm.", flag_type="--")
        nthreads: int = param(
            default_factory=default_nthreads, description="Parallel analyses.", flag_type="-", rename_param="j"
        )
        polarisation: Optional[str] = _opt("Specification of incident polarisation.")
        no_polarisation: Optional[bool] = _opt("Synonym for --polarisation=none", rename="no-polarisation")
        max_adu: Optional[float] = _opt("Maximum intensity of reflection to include.", rename="max-adu")
        min_res: Optional[float] = _opt("Only include crystals diffracting to a minimum resolution.", rename="min-res")
        min_measurements: int = param(
            2, "Minimum measurements of a reflection.", flag_type="--", rename_param="min-measurements"
        )
        push_res: Optional[float] = _opt("Merge beyond the apparent resolution limit.", rename="push-res")
        start_after: int = param(0, "Ignore the first n crystals.", flag_type="--", rename_param="start-after")
        stop_after: int = param(0, "Stop after n crystals (0: all).", flag_type="--", rename_param="stop-after")
        no_free: Optional[bool] = _opt("Disable cross-validation. Testing ONLY.", rename="no-free")
        custom_split: Optional[str] = _opt("Filenames, events and dataset IDs to split by.", rename="custom-split")
        max_rel_B: float = param(
            100, "Reject crystals if |relB| > n sq Angstroms.", flag_type="--", rename_param="max-rel-B"
        )
        output_every_cycle: bool = param(
            False, "Write per-crystal params after every cycle.", flag_type="--", rename_param="output-every-cycle"
        )
        no_logs: bool = param(False, "Do not write logs for plots and maps.", flag_type="--", rename_param="no-logs")
        set_symmetry: Optional[str] = _opt("Set the apparent symmetry of the crystals.", flag="-", rename="w")
        operator: Optional[str] = _opt("Specify an ambiguity operator. E.g. k,h,-l.")
        force_bandwidth: Optional[float] = _opt("Set X-ray bandwidth (fraction, 0.0013).", rename="force-bandwidth")
        force_radius: Optional[float] = _opt("Set the initial profile radius (nm-1).", rename="force-radius")
        force_lambda: Optional[float] = _opt("Set the wavelength. In Angstroms.", rename="force-lambda")
        harvest_file: Optional[str] = _opt("Write parameters to file in JSON format.", rename="harvest-file")

        @field_validator("in_file")
        @classmethod
        def _in_file_from_concatenation(cls, in_file: Optional[str], info: ValidationInfo) -> Optional[str]:
            stream = recorded_value(info, "ConcatenateStreamFiles", "out_file") if in_file == "" else None
            return str(stream) if stream else in_file

        @field_validator("out_file")
        @classmethod
        def _out_file_from_stream(cls, out_file: str, info: ValidationInfo) -> str:
            if out_file:
                return out_file
            in_file = info.data.get("in_file")
            return f"{stem(in_file)}.hkl" if in_file else "partialator.hkl"


class CompareHKL(ThirdPartyTask):
    """CrystFEL's compare_hkl: a figure of merit (Rsplit, CC, ...) of the two half-set merges."""

    image = "crystfel"
    aliases = ("HKLComparer",)
    after = (
        Tasklet(
            "lute_kernel.sfx_tasklets:compare_hkl_fom_summary", ("{{ shell_file }}", "r{{ lute_config.run }}/{{ fom }}")
        ),
    )

    class Parameters(ThirdPartyParameters):
        """compare_hkl's options; see CrystFEL's manual-compare_hkl."""

        long_flags_use_eq = True

        executable: str = param("/opt/crystfel/bin/compare_hkl", "CrystFEL's reflection comparison binary.")
        in_files: Optional[Union[str, List[str]]] = param(
            "",
            "The two HKL files (space-separated, or a list). Default: MergePartialator's .hkl1 and .hkl2.",
            flag_type="",
        )
        symmetry: str = param("", "Point group symmetry.", flag_type="--")
        cell_file: str = param("", "Unit cell file (PDB or CrystFEL format).", flag_type="-", rename_param="p")
        fom: str = param("Rsplit", "Specify figure of merit to calculate.", flag_type="--")
        nshells: int = param(10, "Use n resolution shells.", flag_type="--")
        shell_file: str = param(
            "", "Write the statistics in resolution shells to a file.", flag_type="--", rename_param="shell-file",
            is_result=True,
        )  # fmt: skip
        ignore_negs: bool = param(False, "Ignore negative reflections.", flag_type="--", rename_param="ignore-negs")
        zero_negs: bool = param(False, "Set negative intensities to 0.", flag_type="--", rename_param="zero-negs")
        sigma_cutoff: Optional[Union[float, int, str]] = _opt(
            "Discard I/sigma(I) < n (-infinity: none).", rename="sigma-cutoff"
        )
        rmin: Optional[float] = _opt("Low resolution cutoff of 1/d (m-1). Use this or --lowres NOT both.")
        lowres: Optional[float] = _opt("Low resolution cutoff in Angstroms. Use this or --rmin NOT both.")
        rmax: Optional[float] = _opt("High resolution cutoff in 1/d (m-1). Use this or --highres NOT both.")
        highres: Optional[float] = _opt("High resolution cutoff in Angstroms. Use this or --rmax NOT both.")

        @field_validator("in_files")
        @classmethod
        def _half_sets(
            cls, in_files: Optional[Union[str, List[str]]], info: ValidationInfo
        ) -> Optional[Union[str, List[str]]]:
            merged = _merged_hkl(info) if in_files == "" else None
            return f"{merged}1 {merged}2" if merged else in_files

        @field_validator("cell_file")
        @classmethod
        def _cell(cls, cell_file: str, info: ValidationInfo) -> str:
            return _indexing_cell(cell_file, info)

        @field_validator("symmetry")
        @classmethod
        def _symmetry_of_merge(cls, symmetry: str, info: ValidationInfo) -> str:
            recorded = recorded_value(info, "MergePartialator", "symmetry") if symmetry == "" else None
            return str(recorded) if recorded else symmetry

        @field_validator("shell_file")
        @classmethod
        def _shells_next_to_merge(cls, shell_file: str, info: ValidationInfo) -> str:
            merged = _merged_hkl(info) if shell_file == "" else None
            if not merged:
                return shell_file
            return f"{stem(merged)}_{info.data.get('fom')}_n{info.data.get('nshells')}.dat"

    @classmethod
    def build_argv(cls, params: object) -> List[str]:
        """The kernel's rules, with in_files split into its two files (upstream splits it on spaces)."""
        argv = super().build_argv(params)  # type: ignore[arg-type]
        files = getattr(params, "in_files", None)
        if isinstance(files, str) and files:
            at = argv.index(files)
            argv[at : at + 1] = files.split()
        return argv


class ManipulateHKL(ThirdPartyTask):
    """CrystFEL's get_hkl: transform a reflection list (by default: MergePartialator's .hkl to MTZ)."""

    image = "crystfel"
    aliases = ("HKLManipulator",)

    class Parameters(ThirdPartyParameters):
        """get_hkl's options; see CrystFEL's manual-get_hkl. One manipulation per run."""

        long_flags_use_eq = True

        executable: str = param("/opt/crystfel/bin/get_hkl", "CrystFEL's reflection manipulation binary.")
        in_file: str = param("", "Path to input HKL file.", flag_type="-", rename_param="i")
        out_file: str = param("", "Path to output file.", flag_type="-", rename_param="o", is_result=True)
        cell_file: str = param("", "Unit cell file (PDB or CrystFEL format).", flag_type="-", rename_param="p")
        output_format: str = param(
            "mtz", "mtz, mtz-bij or xds (else CrystFEL's format).", flag_type="--", rename_param="output-format"
        )
        expand: Optional[str] = _opt("Expand reflections to fill the asymmetric unit of this point group.")
        twin: Optional[str] = _opt("Sum intensities of reflections equivalent in this point group.")
        no_need_all_parts: Optional[bool] = _opt(
            "With --twin: write reflections missing a mate.", rename="no-need-all-parts"
        )
        noise: Optional[bool] = _opt("Generate 10% uniform noise.")
        poisson: Optional[bool] = _opt("Generate Poisson noise. Intensities assumed to be A.U.")
        adu_per_photon: Optional[int] = _opt("Use with --poisson to convert A.U. to photons.", rename="adu-per-photon")
        trim_centrics: Optional[bool] = _opt("Duplicated reflections (according to symmetry) are removed.")
        template: Optional[str] = _opt("Only reflections which also appear in specified file are written out.")
        multiplicity: Optional[bool] = _opt("Reflections are multiplied by their symmetric multiplicites.")
        cutoff_angstroms: Optional[Union[str, int, float]] = _opt(
            "n, or n1,n2,n3 (anisotropic truncation along a*, b*, c*).", rename="cutoff-angstroms"
        )
        lowres: Optional[float] = _opt("Remove reflections with d > n")
        highres: Optional[float] = param(None, "Synonym for first form of --cutoff-angstroms")
        reindex: Optional[str] = _opt("Reindex according to specified operator. E.g. k,h,-l.")
        symmetry: Optional[str] = _opt("Point group symmetry to use to override. Almost always OMIT this option.")

        @field_validator("in_file")
        @classmethod
        def _in_file_from_merge(cls, in_file: str, info: ValidationInfo) -> str:
            return (_merged_hkl(info) if in_file == "" else None) or in_file

        @field_validator("out_file")
        @classmethod
        def _mtz_next_to_merge(cls, out_file: str, info: ValidationInfo) -> str:
            merged = _merged_hkl(info) if out_file == "" else None
            return f"{stem(merged)}.mtz" if merged else out_file

        @field_validator("cell_file")
        @classmethod
        def _cell(cls, cell_file: str, info: ValidationInfo) -> str:
            return _indexing_cell(cell_file, info)
