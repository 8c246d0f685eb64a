"""CrystFEL indexing (``IndexCrystFEL``: indexamajig) and stream concatenation (``ConcatenateStreamFiles``).

Upstream LUTE's ``lute/io/models/sfx_index.py`` and ``lute/tasks/sfx_index.py``: the same names,
fields, flags and DB-backed defaults. IndexCrystFEL's input is the ``.lst`` the peak finder recorded
(FindPeaksSFX, else FindPeaksPyAlgos, else FindPeaksPsocake's folder and tag) and its stream is named
after their tag; after it runs, the ``indexamajig_summary_indexing_rate`` tasklet counts indexed
lattices. ConcatenateStreamFiles (first-party, base image) joins the stream files under the folder
IndexCrystFEL wrote into. indexamajig runs in the ``crystfel`` image (S3DF only).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from pydantic import AnyUrl, NonNegativeInt, PositiveFloat, PositiveInt, ValidationInfo, conint, field_validator

from lute_kernel.parameters import TaskParameters, ThirdPartyParameters, param, recorded_value
from lute_kernel.task import Task, ThirdPartyTask
from lute_kernel.tasklets import Tasklet

from ._upstream_defaults import default_nthreads, run_number

PEAK_FINDERS = ("FindPeaksSFX", "FindPeaksPyAlgos")  # newest upstream first, then the LCLS-I one


def _opt(description: str, flag: str = "--", rename: Optional[str] = None) -> object:
    return param(None, description, flag_type=flag, rename_param=rename)


class IndexCrystFEL(ThirdPartyTask):
    """CrystFEL's indexamajig: index (and integrate) the hits the peak finder wrote."""

    image = "crystfel"
    aliases = ("CrystFELIndexer",)
    after = (Tasklet("lute_kernel.sfx_tasklets:indexamajig_summary_indexing_rate", ("{{ out_file }}",)),)

    class Parameters(ThirdPartyParameters):
        """indexamajig's options; see CrystFEL's manual-indexamajig."""

        long_flags_use_eq = True

        executable: str = param("/opt/crystfel/bin/indexamajig", "CrystFEL's indexing binary.")
        in_file: Optional[str] = param("", "Path to input file.", flag_type="-", rename_param="i")
        out_file: str = param("", "Path to output file.", flag_type="-", rename_param="o", is_result=True)
        peaks: Optional[str] = _opt("Peak finding algorithm, or file type: e.g. peakfinder8, or cxi for CXI files.")
        geometry: str = param("", "Path to geometry file.", flag_type="-", rename_param="g")
        zmq_input: Optional[str] = _opt("ZMQ address to receive data over (not with input).", rename="zmq-input")
        zmq_subscribe: Optional[str] = _opt("Subscribe to ZMQ message of type `tag`", rename="zmq-subscribe")
        zmq_request: Optional[AnyUrl] = _opt("Request new data over ZMQ by sending this value", rename="zmq-request")
        asapo_endpoint: Optional[str] = _opt("ASAP::O endpoint (not with zmq-input).", rename="asapo-endpoint")
        asapo_token: Optional[str] = _opt("ASAP::O authentication token.", rename="asapo-token")
        asapo_beamtime: Optional[str] = _opt("ASAP::O beamtime.", rename="asapo-beamtime")
        asapo_source: Optional[str] = _opt("ASAP::O data source.", rename="asapo-source")
        asapo_group: Optional[str] = _opt("ASAP::O consumer group.", rename="asapo-group")
        asapo_stream: Optional[str] = _opt("ASAP::O stream.", rename="asapo-stream")
        asapo_wait_for_stream: Optional[str] = _opt("Wait for the ASAP::O stream.", rename="asapo-wait-for-stream")
        data_format: Optional[str] = _opt("Format for ZMQ or ASAP::O: msgpack, hdf5 or seedee.", rename="data-format")
        basename: bool = param(False, "Remove directory parts of filenames (before prefix).", flag_type="--")
        # Upstream renames this to --asapo-stream (a slip): indexamajig's option is --prefix.
        prefix: Optional[str] = _opt("Add a prefix to the filenames from the infile argument.")
        nthreads: PositiveInt = param(
            default_factory=default_nthreads, description="Number of threads.", flag_type="-", rename_param="j"
        )
        no_check_prefix: bool = param(
            False, "Don't correct the prefix.", flag_type="--", rename_param="no-check-prefix"
        )
        highres: Optional[float] = _opt("Mark all pixels greater than `x` has bad.")
        profile: bool = param(False, "Display timing data to monitor performance.", flag_type="--")
        temp_dir: Optional[str] = _opt("Specify a path for the temp files folder.", rename="temp-dir")
        wait_for_file: conint(gt=-2) = param(  # type: ignore[valid-type]
            0, "Wait at most `x` seconds for a file (-1: forever).", flag_type="--", rename_param="wait-for-file"
        )
        no_image_data: bool = param(False, "Load only the metadata.", flag_type="--", rename_param="no-image-data")
        indexing: Optional[str] = _opt("Comma-separated indexing methods (default: detect).")
        cell_file: Optional[str] = _opt("Unit cell file (PDB or CrystFEL format).", flag="-", rename="p")
        tolerance: str = param("5,5,5,1.5", "Cell tolerances (%): a,b,c,angle.", flag_type="--")
        no_check_cell: bool = param(False, "Do not check the cell.", flag_type="--", rename_param="no-check-cell")
        no_check_peaks: bool = param(False, "Do not check peaks.", flag_type="--", rename_param="no-check-peaks")
        multi: bool = param(False, "Enable multi-lattice indexing.", flag_type="--")
        wavelength_estimate: Optional[float] = _opt("Estimate of the wavelength.", rename="wavelength-estimate")
        camera_length_estimate: Optional[float] = _opt("Camera length estimate.", rename="camera-length-estimate")
        max_indexer_threads: Optional[PositiveInt] = _opt("Indexer threads.", rename="max-indexer-threads")
        no_retry: bool = param(False, "Do not retry without weak peaks.", flag_type="--", rename_param="no-retry")
        no_refine: bool = param(False, "Skip refinement step.", flag_type="--", rename_param="no-refine")
        no_revalidate: bool = param(False, "Skip revalidation step.", flag_type="--", rename_param="no-revalidate")
        taketwo_member_threshold: Optional[PositiveInt] = _opt("TakeTwo vectors.", rename="taketwo-member-threshold")
        taketwo_len_tolerance: Optional[PositiveFloat] = _opt("TakeTwo length tol.", rename="taketwo-len-tolerance")
        taketwo_angle_tolerance: Optional[PositiveFloat] = _opt("TakeTwo angle.", rename="taketwo-angle-tolerance")
        taketwo_trace_tolerance: Optional[PositiveFloat] = _opt("TakeTwo trace.", rename="taketwo-trace-tolerance")
        xgandalf_sampling_pitch: Optional[NonNegativeInt] = _opt("XGANDALF pitch.", rename="xgandalf-sampling-pitch")
        xgandalf_grad_desc_iterations: Optional[NonNegativeInt] = _opt(
            "Gradient descent iterations.", rename="xgandalf-grad-desc-iterations"
        )
        xgandalf_tolerance: Optional[PositiveFloat] = _opt("XGANDALF tolerance.", rename="xgandalf-tolerance")
        xgandalf_no_deviation_from_provided_cell: Optional[bool] = _opt(
            "Found unit cell must match provided.", rename="xgandalf-no-deviation-from-provided-cell"
        )
        xgandalf_min_lattice_vector_length: Optional[PositiveFloat] = _opt(
            "Minimum possible lattice length.", rename="xgandalf-min-lattice-vector-length"
        )
        xgandalf_max_lattice_vector_length: Optional[PositiveFloat] = _opt(
            "Maximum possible lattice length.", rename="xgandalf-max-lattice-vector-length"
        )
        xgandalf_max_peaks: Optional[PositiveInt] = _opt("Peaks used for indexing.", rename="xgandalf-max-peaks")
        xgandalf_fast_execution: bool = param(
            False, "sampling-pitch=2, grad-desc-iterations=3.", flag_type="--", rename_param="xgandalf-fast-execution"
        )
        integration: str = param("rings-nocen", "Method for integrating reflections.", flag_type="--")
        fix_profile_radius: Optional[float] = _opt("Fix the profile radius (m^{-1})", rename="fix-profile-radius")
        fix_divergence: Optional[float] = param(
            0, "Fix the divergence (rad, full angle).", flag_type="--", rename_param="fix-divergence"
        )
        int_radius: str = param("4,5,7", "Radii for 3-ring integration.", flag_type="--", rename_param="int-radius")
        int_diag: str = param("none", "Integration diagnostics condition.", flag_type="--", rename_param="int-diag")
        push_res: str = param(
            "infinity", "Integrate beyond the resolution (nm-1).", flag_type="--", rename_param="push-res"
        )
        overpredict: bool = param(False, "Over-predict reflections.", flag_type="--")
        cell_parameters_only: bool = param(False, "Do not predict refletions at all", flag_type="--")
        no_non_hits_in_stream: bool = param(
            False, "Exclude non-hits from the stream file.", flag_type="--", rename_param="no-non-hits-in-stream"
        )
        # Upstream spells the option --copy-hheader; indexamajig's is --copy-header (the field keeps its name).
        copy_hheader: Optional[str] = _opt("Copy this image header value to the stream.", rename="copy-header")
        no_peaks_in_stream: bool = param(
            False, "No peaks in stream.", flag_type="--", rename_param="no-peaks-in-stream"
        )
        no_refls_in_stream: bool = param(False, "No reflections.", flag_type="--", rename_param="no-refls-in-stream")
        serial_offset: Optional[PositiveInt] = _opt("Start numbering at `x` instead of 1.", rename="serial-offset")
        harvest_file: Optional[str] = _opt("Write parameters to file in JSON format.", rename="harvest-file")

        @field_validator("in_file")
        @classmethod
        def _in_file_from_peak_finder(cls, in_file: Optional[str], info: ValidationInfo) -> Optional[str]:
            if in_file != "":
                return in_file
            for task in PEAK_FINDERS:
                recorded = recorded_value(info, task, "out_file")
                if recorded is not None:
                    return str(recorded)
            out_dir = recorded_value(info, "FindPeaksPsocake", "outDir")
            if out_dir is None:
                return in_file  # upstream: nothing recorded leaves it empty
            header = info.data["lute_config"]
            name = f"{out_dir}/{header.experiment}_{run_number(header.run, 'in_file'):04d}"
            tag = recorded_value(info, "FindPeaksPsocake", "tag")
            return f"{name}_{tag}.lst" if tag is not None else f"{name}.lst"

        @field_validator("out_file")
        @classmethod
        def _out_file_from_tag(cls, out_file: str, info: ValidationInfo) -> str:
            if out_file or "lute_config" not in info.data:
                return out_file
            header = info.data["lute_config"]
            run = run_number(header.run, "the default out_file")
            tag = next(
                (
                    t
                    for t in (recorded_value(info, task, "tag") for task in (*PEAK_FINDERS, "FindPeaksPsocake"))
                    if t is not None
                ),
                None,
            )
            name = f"{header.experiment}_r{run:04d}" + (f"_{tag}" if tag is not None else "")
            return f"{header.work_dir}/{name}.stream"


class ConcatenateStreamFiles(Task):
    """Concatenates the stream files under a folder (by tag) into one stream for merging."""

    image = "base"
    aliases = ("StreamFileConcatenator",)

    class Parameters(TaskParameters):
        """Parameters of ConcatenateStreamFiles (upstream's ConcatenateStreamFilesParameters)."""

        set_result = True

        in_file: str = param("", "Root of directory tree storing stream files to merge.")
        tag: Optional[str] = param("", "Tag identifying the stream files to merge.")
        out_file: str = param("", "Path to merged output stream file.", is_result=True)

        @field_validator("in_file")
        @classmethod
        def _in_dir_from_indexer(cls, in_file: str, info: ValidationInfo) -> str:
            stream = recorded_value(info, "IndexCrystFEL", "out_file") if not in_file else None
            return str(Path(stream).parent) if stream else in_file

        @field_validator("tag")
        @classmethod
        def _tag_from_indexer(cls, tag: Optional[str], info: ValidationInfo) -> Optional[str]:
            stream = recorded_value(info, "IndexCrystFEL", "out_file") if tag == "" else None
            return Path(stream).name.split("_")[-1].split(".")[0] if stream else tag

        @field_validator("out_file")
        @classmethod
        def _out_file_next_to_folder(cls, out_file: str, info: ValidationInfo) -> str:
            if out_file or "in_file" not in info.data:
                return out_file
            return str(Path(info.data["in_file"]).parent / f"{info.data.get('tag')}.stream")

    def run(self) -> None:
        """Join every ``*<tag>*.stream`` under in_file (sorted) into out_file."""
        import shutil

        params = self.params
        assert isinstance(params, ConcatenateStreamFiles.Parameters)
        out = os.path.abspath(params.out_file)
        streams = sorted(
            p for p in Path(params.in_file).rglob(f"*{params.tag or ''}*.stream") if os.path.abspath(p) != out
        )
        if not streams:
            raise FileNotFoundError(f"no *{params.tag or ''}*.stream under {params.in_file!r}")
        self.log.info("Merging %d stream files into %s: %s", len(streams), params.out_file, [str(s) for s in streams])
        with open(params.out_file, "wb") as joined:
            for stream in streams:
                with open(stream, "rb") as part:
                    shutil.copyfileobj(part, joined)
        self.result.summary = {"Stream files concatenated": str(len(streams))}
        self.result.payload = params.out_file
