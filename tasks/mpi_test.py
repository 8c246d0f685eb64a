"""Upstream LUTE's MPI test Task: every rank reports to the kernel over the IPC socket.

``TestMultiNodeCommunication`` (upstream managed Task ``MultiNodeCommunicationTester``) runs in the
``psana2`` image (mpi4py on MPICH). Each rank logs where it runs and sends one object with a
progress message: a float64 array or a small PNG line plot. Upstream pickled a matplotlib figure;
our socket carries JSON and raw numpy buffers only, so the plot travels as the bytes of a PNG in a
uint8 array, drawn and encoded here with the stdlib (``draw_line_plot``, ``encode_png``). Rank 0
gathers a CRC-32 of what every rank sent and reports them. One process (no MPI launcher) is a
world of size 1. mpi4py and numpy are imported inside ``run()`` only.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any, Dict, List, Literal, Sequence

from lute_kernel.parameters import TaskParameters, param
from lute_kernel.task import Resources, Task

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOT_POINTS = 50  # what upstream plotted


class TestMultiNodeCommunication(Task):
    """Every MPI rank sends the kernel a log line and an array or a PNG plot; rank 0 sums up."""

    image = "psana2"
    aliases = ("MultiNodeCommunicationTester",)
    resources = Resources(ranks=2)
    mpi = True

    class Parameters(TaskParameters):
        """Parameters of ``TestMultiNodeCommunication``."""

        send_obj: Literal["plot", "array"] = param(
            "plot", "What each rank sends: 'plot' (a PNG line plot) or 'array' (float64 values)."
        )
        arr_size: int = param(5, "Number of values in each rank's array (send_obj: array).", ge=1)

    def run(self) -> None:
        """Log this rank's place, send its object, and gather every rank's checksum on rank 0."""
        import numpy as np
        from mpi4py import MPI

        params = self.params
        assert isinstance(params, TestMultiNodeCommunication.Parameters)
        comm = MPI.COMM_WORLD
        rank, size = comm.Get_rank(), comm.Get_size()
        host = MPI.Get_processor_name()
        self.log.info("rank %d of %d on host %s", rank, size, host)
        data: Dict[str, Any] = {"rank": rank}
        if params.send_obj == "array":
            sent = np.full(params.arr_size, rank, dtype=np.float64)
            data.update(format="array", array=sent)
        else:
            pixels = draw_line_plot(plot_values(rank))
            sent = np.frombuffer(encode_png(pixels), dtype=np.uint8)
            data.update(format="png", image=sent, width=len(pixels[0]), height=len(pixels))
        report = {"rank": rank, "host": host, "nbytes": int(sent.nbytes), "crc32": zlib.crc32(sent.tobytes())}
        self.progress(1, 1, f"rank {rank}: sent {params.send_obj} ({sent.nbytes} bytes)", data=data)
        reports = comm.gather(report, root=0)
        outcome = None
        if rank == 0:
            summary = {
                "ranks": size,
                "send_obj": params.send_obj,
                "received": len(reports),
                "hosts": len({r["host"] for r in reports}),
            }
            outcome = (summary, {"reports": reports})
        # Every rank ends with rank 0's result (the kernel records rank 0's).
        self.result.summary, self.result.payload = comm.bcast(outcome, root=0)


def plot_values(rank: int, points: int = PLOT_POINTS) -> List[float]:
    """Return ``points`` values in [0, 1]: a sine whose phase is the rank, so each rank draws its own."""
    return [0.5 + 0.4 * math.sin(2 * math.pi * i / max(points - 1, 1) + rank) for i in range(points)]


def draw_line_plot(values: Sequence[float], width: int = 96, height: int = 64) -> List[bytearray]:
    """Draw ``values`` (clipped to [0, 1]) as a black line with axes on white; return the pixel rows.

    Returns:
        ``height`` rows of ``width`` grey levels (0 black, 255 white), top row first.
    """
    if not values:
        raise ValueError("nothing to plot")
    margin = 4
    if width < 2 * margin or height < 2 * margin:
        raise ValueError(f"a {width}x{height} plot is too small")
    rows = [bytearray(b"\xff" * width) for _ in range(height)]
    axis_y = height - margin  # the x axis
    for row in rows[: axis_y + 1]:
        row[margin] = 0  # the y axis
    rows[axis_y][margin:] = bytes(width - margin)
    left, right, top, bottom = margin + 1, width - 2, 1, axis_y - 1
    points = [
        (
            left + round(i * (right - left) / max(len(values) - 1, 1)),
            bottom - round(min(max(v, 0.0), 1.0) * (bottom - top)),
        )
        for i, v in enumerate(values)
    ]
    for (x0, y0), (x1, y1) in zip(points, points[1:] or points):
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for step in range(steps + 1):
            rows[y0 + round(step * (y1 - y0) / steps)][x0 + round(step * (x1 - x0) / steps)] = 0
    return rows


def encode_png(rows: Sequence[Any]) -> bytes:
    """Encode 8-bit greyscale pixel rows (bytes, lists of 0-255, or a 2-D uint8 array) as a PNG file.

    Raises:
        ValueError: No rows, an empty or ragged row, or a value outside 0-255.
        TypeError: A numpy array that is not uint8 (its raw bytes would not be pixels).
    """
    dtype = getattr(rows, "dtype", None)
    if dtype is not None and str(dtype) != "uint8":
        raise TypeError(f"pixels must be uint8, got {dtype}")
    lines = [bytes(row) for row in rows]
    if not lines or not lines[0]:
        raise ValueError("a PNG needs at least one row of at least one pixel")
    width = len(lines[0])
    if any(len(line) != width for line in lines):
        raise ValueError("every pixel row must have the same length")
    header = struct.pack(">IIBBBBB", width, len(lines), 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    scanlines = b"".join(b"\x00" + line for line in lines)  # filter type 0 (none) on every row
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(scanlines))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
