"""Fix dxtbx 3.11's integer CBF writer for bookworm's pycbf (run once at image build time).

``FullCBFWriter.add_data_to_cbf`` passes the byte order of integer arrays as ``str`` while pycbf
wants ``bytes`` (its real-array branch already encodes it). The edit is checked: if the code it
fixes is not found exactly once, the build fails instead of shipping an unfixed writer.

Usage: python3 fix_cbf_writer.py /usr/lib/python3/dist-packages/dxtbx/format/cbf_writer.py
"""

import sys

BROKEN = "elsigned,\n                    elements,\n                    byteorder,\n"
FIXED = "elsigned,\n                    elements,\n                    byteorder.encode(),\n"


def main(path: str) -> None:
    """Rewrite ``path`` with the integer branch's byte order encoded."""
    with open(path) as handle:
        text = handle.read()
    if text.count(BROKEN) != 1:
        sys.exit(f"{path}: the integer set_integerarray_wdims_fs call changed; review this fix")
    with open(path, "w") as handle:
        handle.write(text.replace(BROKEN, FIXED))


if __name__ == "__main__":
    main(sys.argv[1])
