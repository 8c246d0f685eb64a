"""Reading a rendered Apptainer definition file with spython's recipe parser.

Owns the parsed view the image builder needs of a definition: the bootstrap agent, the sections in
order (with their lines), the host sources of ``%files`` (not ``%files from <stage>``: those come
from an earlier stage) and the ``%labels``. spython's ``SingularityParser`` does the parsing; it is
made to read our definitions faithfully here: it accepts any bootstrap agent (spython accepts only
``docker``), keeps ``From:`` as written (spython lowercases it), and a section's first line that
mentions ``bootstrap`` or ``from:`` stays in its section. Comment lines, and content lines that
start with ``%`` after their indentation (spython would take them for sections), are left out of
what it reads: they are never a source or a label. Must not render, hash or build; spython is
imported when a definition is parsed (image commands), never on the run path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

_SECTION_LINE = re.compile(r"^%(\S+)")


@dataclass(frozen=True)
class Definition:
    """What a definition file declares, as spython reads it.

    Attributes:
        agent: The ``Bootstrap:`` agent (None: no such header line).
        base: The ``From:`` value (an image, a path), as written.
        sections: Each section's name (lowercase, as Apptainer reads them) and its line in the text.
        files: ``(source, destination)`` of every ``%files`` line of this stage.
        labels: The ``%labels``, name to value.
        environment: The ``%environment`` assignments (``NAME=value …``, without ``export``).
    """

    agent: Optional[str]
    base: Optional[str]
    sections: Tuple[Tuple[str, int], ...]
    files: Tuple[Tuple[str, str], ...]
    labels: Dict[str, str] = field(default_factory=dict)
    environment: Tuple[str, ...] = ()

    @property
    def sources(self) -> List[str]:
        """The host paths ``%files`` copies (relative ones are relative to the recipes folder)."""
        return [source for source, _dest in self.files]


def _parser(lines: List[str]) -> Any:
    """Return spython's Singularity parser, made faithful to our definitions, over ``lines``."""
    from spython.main.parse.parsers.singularity import SingularityParser

    class DefinitionParser(SingularityParser):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(filename=None, load=False)
            self.lines = lines
            self.agent: Optional[str] = None
            self.current: Optional[Tuple[str, Optional[str]]] = None
            self.found: List[str] = []

        def _check_bootstrap(self, line: str) -> None:
            key, _, value = line.partition(":")
            if self.current is not None:  # a section's first line that mentions "bootstrap": content
                self._load_section([line], *self.current)
            elif key.strip().lower() == "bootstrap" and self.agent is None:
                self.agent = value.split("#", 1)[0].strip()

        def _load_from(self, line: str) -> None:
            key, _, value = line.partition(":")
            if self.current is not None:
                self._load_section([line], *self.current)
            elif key.strip().lower() == "from":
                self.recipe[self.active_layer].fromHeader = value.split("#", 1)[0].strip()

        def _get_section(self, line: str) -> Tuple[str, Optional[str]]:
            section, layer = super()._get_section(line)
            self.current = (section, layer)
            self.found.append(section)
            return section, layer

    return DefinitionParser()


def _spython_lines(text: str) -> List[str]:
    kept = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (stripped.startswith("%") and not raw.startswith("%")):
            kept.append("\n")  # keeps nothing, and nothing else moves
            continue
        kept.append(raw + "\n")
    return kept


def parse_definition(text: str) -> Definition:
    """Parse a rendered definition file.

    Raises:
        ValueError: spython cannot read it (the message says why).
    """
    parser = _parser(_spython_lines(text))
    try:
        recipe = parser.parse()
    except (IndexError, KeyError, ValueError, AttributeError) as exc:  # spython's own failures
        raise ValueError(f"spython cannot parse the definition: {type(exc).__name__}: {exc}") from None
    stage = next(iter(recipe.values()))
    # spython names the sections; their lines (for messages) are the text's lines that open one.
    numbers = [n for n, raw in enumerate(text.splitlines(), start=1) if _SECTION_LINE.match(raw)]
    if len(numbers) != len(parser.found):
        numbers = [1] * len(parser.found)
    sections = tuple(zip(parser.found, numbers))
    files = tuple(_pair(line) for line in stage.files if line.strip())
    labels: Dict[str, str] = {}
    for line in stage.labels:
        name, _, value = line.strip().partition(" ")
        labels[name] = value.strip()
    return Definition(
        agent=parser.agent,
        base=stage.fromHeader,
        sections=sections,
        files=files,
        labels=labels,
        environment=tuple(stage.environ),
    )


def _pair(line: Any) -> Tuple[str, str]:
    words = line.split() if isinstance(line, str) else [str(w) for w in line]
    source = words[0]
    return source, words[1] if len(words) > 1 else source
