"""One parsed YAML document as the config loader sees it: its data and the line of each key.

Its own module, without PyYAML: a document read back from the parse cache (``lute_kernel.parse_cache``)
is the same object as one PyYAML just parsed (``lute_kernel.config.yaml_lines``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict


@dataclass(frozen=True)
class YamlDocument:
    """One YAML document: its data and where its keys are.

    Attributes:
        data: The document as PyYAML's safe loader constructs it.
        lines: Dotted key path (``Section.key.0.sub``) to the 1-based line of that key
            (of the item, for sequence elements).
        start_line: 1-based line where the document's content starts.
    """

    data: Any
    lines: Dict[str, int]
    start_line: int
