"""Parse a YAML stream into documents, remembering the line of every key, with bounded work.

Owns the one place the configuration text meets PyYAML. Documents are composed with the node
API (libyaml's C parser when PyYAML has it, else the pure-Python one: same nodes, same marks) so
each value keeps the 1-based line YAML saw it on. A text long enough to hold more values than
allowed is first counted from its events (one at a time, flat memory) and refused if it does.
Before anything is constructed, each document's
node graph is measured (iteratively, each shared node once): a document that aliases expand past
the limit, that nests too deeply, or that contains itself is refused. Then PyYAML's safe
constructor builds the data (duplicate keys keep the last value, as upstream LUTE relies on); a
value its tag cannot build (``!!float "abc"``, ``!!int ""``) and binary or set values are refused
with their line. Must not read files, check the configuration's structure, or substitute
anything; errors propagate as :class:`yaml.YAMLError` or :class:`DocumentShapeError` for the
caller to word.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Set, Tuple

import yaml
from yaml.constructor import ConstructorError

from lute_kernel.config.documents import YamlDocument
from lute_kernel.config.limits import DEFAULT_LIMITS, ConfigLimits

USES_LIBYAML = hasattr(yaml, "CSafeLoader")
"""True when documents are composed by libyaml (about 5x faster than the pure-Python parser)."""

# libyaml refuses "%YAML 1.3", which every upstream configuration starts with; PyYAML's own
# parser accepts any 1.x and reads it as 1.1. The C parser gets the same length "1.1" instead,
# so every line and column stays where it was.
_VERSION_DIRECTIVE = re.compile(r"^(%YAML[ \t]+)(1\.[0-9]+)(?=[ \t]*(?:#.*)?$)", re.MULTILINE)

_TAG_PREFIX = "tag:yaml.org,2002:"
_REFUSED_TAGS = {
    "binary": "binary values (!!binary) cannot be parameters",
    "set": "sets (!!set) cannot be parameters; use a list",
}


class DocumentShapeError(ValueError):
    """A document's node graph is too large, too deep or cyclic; nothing was constructed.

    Args:
        message: What is wrong.
        line: 1-based line where it shows, when known.
    """

    def __init__(self, message: str, line: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class RecursiveAliasError(DocumentShapeError):
    """A YAML alias refers to a node that contains it, so the data is not a tree."""


def short_tag(tag: str) -> str:
    """Return ``!!float`` for ``tag:yaml.org,2002:float``; other tags unchanged."""
    return "!!" + tag[len(_TAG_PREFIX) :] if tag.startswith(_TAG_PREFIX) else tag


def short_tags(text: str) -> str:
    """Return ``text`` (a YAML error message) with tags written the way the file writes them."""
    return text.replace(_TAG_PREFIX, "!!")


class _ExplainedConstruction:
    """Mixed into the safe loaders: construction errors that say which value and line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)  # type: ignore[misc]
        except yaml.YAMLError:
            raise
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError) as exc:
            shown = repr(node.value) if isinstance(node, yaml.ScalarNode) else "this value"
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            detail = f" ({str(exc)[:100]})" if isinstance(exc, ValueError) else ""
            raise ConstructorError(
                None, None, f"{shown} is not a valid {short_tag(node.tag)}{detail}", node.start_mark
            ) from None


def _refuse(loader: Any, node: yaml.Node) -> Any:
    reason = _REFUSED_TAGS[node.tag[len(_TAG_PREFIX) :]]
    raise ConstructorError(None, None, reason, node.start_mark)


def _loader_class(base: Any) -> Any:
    loader: Any = type(f"Lute{base.__name__}", (_ExplainedConstruction, base), {})
    for name in _REFUSED_TAGS:
        loader.add_constructor(_TAG_PREFIX + name, _refuse)
    return loader


_PURE_LOADER = _loader_class(yaml.SafeLoader)
_C_LOADER = _loader_class(yaml.CSafeLoader) if USES_LIBYAML else _PURE_LOADER


def parse_documents(
    text: str, limits: ConfigLimits = DEFAULT_LIMITS, *, pure_python: bool = False
) -> List[YamlDocument]:
    """Parse every document of a YAML stream.

    Args:
        text: The whole YAML stream.
        limits: Nesting depth and alias expansion bounds.
        pure_python: Use PyYAML's own parser even when libyaml is there (tests compare the two).

    Returns:
        The documents in stream order.

    Raises:
        yaml.YAMLError: The text is not YAML the safe loader accepts.
        DocumentShapeError: A document is too deep, expands too far, or contains itself.
    """
    loader_class = _PURE_LOADER if pure_python else _C_LOADER
    if loader_class is not _PURE_LOADER:
        text = _VERSION_DIRECTIVE.sub(lambda m: m.group(1) + "1.1".ljust(len(m.group(2))), text)
    if len(text) > limits.max_values:  # a shorter text cannot hold more values than it has characters
        _count_values(loader_class(text), limits)
    loader = loader_class(text)
    documents: List[YamlDocument] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # check_node() said there is one; this only narrows the type
                break
            _check_shape(node, limits)
            # Construct first: merge keys (<<) are flattened into the node while constructing.
            data = loader.construct_document(node)
            documents.append(YamlDocument(data, _key_lines(node), node.start_mark.line + 1))
    finally:
        loader.dispose()
    return documents


_VALUE_EVENTS = (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent, yaml.AliasEvent)


def _count_values(loader: Any, limits: ConfigLimits) -> None:
    """Refuse a stream of more than ``max_values`` values, from its events, before composing it."""
    # Events come one at a time and cost a fifth of composing: memory stays flat however large.
    count = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, _VALUE_EVENTS):
                count += 1
                if count > limits.max_values:
                    raise DocumentShapeError(
                        f"the file holds more than {limits.max_values:,} values; a LUTE configuration holds hundreds",
                        event.start_mark.line + 1 if event.start_mark is not None else None,
                    )
    finally:
        loader.dispose()


def _check_shape(root: yaml.Node, limits: ConfigLimits) -> None:
    """Refuse a document whose expanded tree is too deep or too much larger than its text."""
    # Post-order walk with memoised (expanded size, depth) per collection node: linear in the
    # nodes written, however many times aliases reuse them. Scalars (most nodes) are counted
    # where they stand, without entries of their own.
    if type(root) is yaml.ScalarNode:
        return
    sizes: Dict[int, int] = {}
    depths: Dict[int, int] = {}
    open_nodes: Set[int] = set()
    written = 1
    stack: List[yaml.Node] = [root]
    while stack:
        node = stack[-1]
        key = id(node)
        if key in sizes:
            stack.pop()
            continue
        children = node.value if type(node) is yaml.SequenceNode else [part for pair in node.value for part in pair]
        if key not in open_nodes:
            open_nodes.add(key)
            written += len(children)
            pending = [child for child in children if type(child) is not yaml.ScalarNode and id(child) not in sizes]
            if pending:
                # Every open node is an ancestor of the one being walked: meeting one is a cycle.
                if any(id(child) in open_nodes for child in pending):
                    raise RecursiveAliasError(f"a YAML alias at line {node.start_mark.line + 1} contains itself")
                stack.extend(pending)
                continue
        stack.pop()
        open_nodes.discard(key)
        size, depth = 1, 2 if children else 1
        for child in children:
            if type(child) is yaml.ScalarNode:
                size += 1
            else:
                size += sizes[id(child)]
                depth = max(depth, depths[id(child)] + 1)
        if depth > limits.max_depth:
            raise DocumentShapeError(
                f"values are nested more than {limits.max_depth} levels deep", node.start_mark.line + 1
            )
        sizes[key], depths[key] = size, depth
    expanded = sizes[id(root)]
    if expanded - written > limits.max_alias_expansion:
        raise DocumentShapeError(
            f"YAML aliases expand this document from {written:,} to {_count_text(expanded)} values"
            f" (at most {limits.max_alias_expansion:,} more than written are allowed)",
            root.start_mark.line + 1,
        )


def _count_text(count: int) -> str:
    return f"{count:,}" if count < 10**15 else f"about 10^{len(str(count)) - 1}"


def _key_lines(root: yaml.Node) -> Dict[str, int]:
    lines: Dict[str, int] = {}
    # Children are pushed last first, so they are visited in file order and, as before, a key
    # that appears twice keeps the line of its last occurrence.
    stack: List[Tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, prefix = stack.pop()
        entries: List[Tuple[str, yaml.Node, int]] = []
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                entries.append((f"{prefix}{key}", value_node, key_node.start_mark.line + 1))
        elif isinstance(node, yaml.SequenceNode):
            entries = [(f"{prefix}{index}", item, item.start_mark.line + 1) for index, item in enumerate(node.value)]
        for dotted, _, line in entries:
            lines[dotted] = line
        stack.extend((child, f"{dotted}.") for dotted, child, _ in reversed(entries))
    return lines


__all__ = [
    "USES_LIBYAML",
    "DocumentShapeError",
    "RecursiveAliasError",
    "YamlDocument",
    "parse_documents",
    "short_tag",
    "short_tags",
]
