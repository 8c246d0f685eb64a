"""Parse a YAML stream into documents, remembering the line of every key.

Owns the one place the configuration text meets PyYAML: documents are composed with the node
API (``SafeLoader``) so each value keeps the 1-based line YAML saw it on, then constructed with
PyYAML's safe constructor (so duplicate keys keep the last value, as upstream LUTE relies on).
Must not read files, check the configuration's structure, or substitute anything; YAML errors
propagate as :class:`yaml.YAMLError` for the caller to word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Set

import yaml


class RecursiveAliasError(ValueError):
    """A YAML alias refers to a node that contains it, so the data is not a tree."""


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


def parse_documents(text: str) -> List[YamlDocument]:
    """Parse every document of a YAML stream.

    Args:
        text: The whole YAML stream.

    Returns:
        The documents in stream order.

    Raises:
        yaml.YAMLError: The text is not YAML the safe loader accepts.
        RecursiveAliasError: An alias makes a document contain itself.
    """
    loader = yaml.SafeLoader(text)
    documents: List[YamlDocument] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # check_node() said there is one; this only narrows the type
                break
            # Construct first: merge keys (<<) are flattened into the node while constructing.
            data = loader.construct_document(node)
            lines: Dict[str, int] = {}
            _record_lines(node, "", lines, set())
            documents.append(YamlDocument(data, lines, node.start_mark.line + 1))
    finally:
        loader.dispose()
    return documents


def _record_lines(node: yaml.Node, prefix: str, lines: Dict[str, int], active: Set[int]) -> None:
    if id(node) in active:
        raise RecursiveAliasError(f"a YAML alias at line {node.start_mark.line + 1} contains itself")
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            dotted = f"{prefix}{key}"
            lines[dotted] = key_node.start_mark.line + 1
            _record_lines(value_node, f"{dotted}.", lines, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            dotted = f"{prefix}{index}"
            lines[dotted] = item.start_mark.line + 1
            _record_lines(item, f"{dotted}.", lines, active)
    active.discard(id(node))
