"""Reading upstream LUTE DAG files (``!LUTE_DAG``) unchanged into :class:`flows.dag.Dag`.

Owns the file format: the root tag, the node keys (``task_name``, ``slurm_params``, ``next``, and
``retries``; ``param_matrix`` in a ``!param_sweep``; upstream's ``run_dependent`` is kept), the
trigger-rule tags and the branch tags. The YAML is composed (not constructed), so every node keeps
its tag and line; anything else is a :class:`DagError` naming the file, the line, the node path
(``Tester > SocketTester > WriteTester``) and the field. Must not know which Tasks exist, read
configs, or expand sweeps (``flows.graph`` does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union, cast

import yaml

from flows.dag import DAQ_KEY, Branch, Dag, Item, Node, TriggerRule
from lute_kernel.errors import InputError

ROOT_TAG = "!LUTE_DAG"
SWEEP_TAG = "!param_sweep"
BRANCH_TAGS = {"!run_type": "run_type", "!branch_daq2": "daq"}
RULE_TAGS = {f"!{rule.value}": rule for rule in TriggerRule}
_MAP_TAG = "tag:yaml.org,2002:map"
_NODE_KEYS = ("task_name", "slurm_params", "next", "retries", "run_dependent")
_MAX_DEPTH = 100

YamlNode = Union[yaml.MappingNode, yaml.SequenceNode, yaml.ScalarNode]


class DagError(InputError):
    """A DAG file is not a valid LUTE DAG; the message names the file, line, node path and field."""

    def __init__(self, path: str, problem: str, *, line: Optional[int] = None, node: str = "", field: str = "") -> None:
        self.path, self.problem, self.line, self.node, self.field = path, problem, line, node, field
        where = path if line is None else f"{path}:{line}"
        super().__init__(": ".join(part for part in (where, node, field, problem) if part))


def node_path(names: Sequence[str]) -> str:
    """Return how messages name a node: its ancestors' names and its own, ``A > B > C``."""
    return " > ".join(names)


def load_dag(path: Union[str, Path]) -> Dag:
    """Read and check a DAG file; raise DagError (an InputError) when it is not a valid LUTE DAG."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DagError(where, "DAG file not found") from None
    except UnicodeDecodeError as exc:
        raise DagError(where, f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise DagError(where, f"cannot be read ({exc.strerror or exc})") from None
    return parse_dag(text, where)


def parse_dag(text: str, path: str = "<dag>") -> Dag:
    """Parse a DAG file's text (``path`` names it in messages)."""
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise DagError(
            path, f"not valid YAML: {exc.problem or exc.context}", line=mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as exc:
        raise DagError(path, f"not valid YAML: {exc}") from None
    documents = [d for d in documents if d is not None]
    if len(documents) != 1:
        raise DagError(path, f"a DAG file holds one YAML document, not {len(documents)}")
    return _Reader(path).dag(cast(YamlNode, documents[0]))


class _Reader:
    """Walks the composed YAML of one file; every check raises DagError with the node's path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._constructor = yaml.SafeLoader("")
        self._open: set[int] = set()  # nodes being read (an alias that contains itself is a cycle)

    def error(self, problem: str, at: Any, names: Sequence[str] = (), field: str = "") -> DagError:
        line = at.start_mark.line + 1 if at is not None and getattr(at, "start_mark", None) else None
        return DagError(self.path, problem, line=line, node=node_path(names), field=field)

    def dag(self, root: YamlNode) -> Dag:
        if root.tag != ROOT_TAG:
            raise self.error(f"not a LUTE DAG: the document must start with the {ROOT_TAG} tag", root)
        items: Tuple[Item, ...]
        if isinstance(root, yaml.MappingNode):
            items = (self.item(root, (), 0, tag=_MAP_TAG),)
        elif isinstance(root, yaml.SequenceNode):
            items = self.items(root, (), 0, "")
        else:
            raise self.error(f"{ROOT_TAG} must hold a node (task_name, slurm_params, next) or a list of them", root)
        if not items:
            raise self.error("the DAG has no nodes", root)
        return Dag(Path(self.path), items)

    def value(self, node: YamlNode, names: Sequence[str], field: str) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise self.error(f"cannot read this value: {exc.problem}", node, names, field) from None

    def items(self, seq: YamlNode, names: Tuple[str, ...], depth: int, field: str) -> Tuple[Item, ...]:
        if isinstance(seq, yaml.ScalarNode) and self.value(seq, names, field) is None:
            return ()
        if isinstance(seq, yaml.MappingNode):  # one child written without a list
            return (self.item(seq, names, depth),)
        if not isinstance(seq, yaml.SequenceNode):
            raise self.error("must be a list of nodes ([] for none)", seq, names, field)
        return tuple(self.item(element, names, depth) for element in seq.value)

    def item(self, node: YamlNode, parents: Tuple[str, ...], depth: int, *, tag: Optional[str] = None) -> Item:
        if depth > _MAX_DEPTH:
            raise self.error(f"nodes are nested more than {_MAX_DEPTH} deep", node, parents)
        if id(node) in self._open:
            raise self.error("a YAML alias makes this node contain itself", node, parents)
        self._open.add(id(node))
        try:
            return self._item(node, parents, depth, tag or node.tag)
        finally:
            self._open.discard(id(node))

    def _item(self, node: YamlNode, parents: Tuple[str, ...], depth: int, tag: str) -> Item:
        if not isinstance(node, yaml.MappingNode):
            raise self.error("a node must be a mapping with task_name, slurm_params and next", node, parents)
        if tag in BRANCH_TAGS:
            return self.branch(node, parents, depth, BRANCH_TAGS[tag])
        if tag != _MAP_TAG and tag != SWEEP_TAG and tag not in RULE_TAGS:
            known = ", ".join([*RULE_TAGS, SWEEP_TAG, *BRANCH_TAGS])
            raise self.error(f"unknown tag {tag} (known: {known})", node, parents)
        fields = self.mapping(node, parents)
        names = (*parents, self.task_name(node, fields, parents))
        allowed = (*_NODE_KEYS, "param_matrix") if tag == SWEEP_TAG else _NODE_KEYS
        for key, (key_node, _) in fields.items():
            if key not in allowed:
                hint = " (only a !param_sweep node has one)" if key == "param_matrix" else ""
                raise self.error(f"unknown key{hint}; a node has {', '.join(allowed)}", key_node, names, key)
        return Node(
            task_name=names[-1],
            rule=RULE_TAGS.get(tag, TriggerRule.ALL_SUCCESS),
            slurm_params=self.slurm_params(fields, names),
            next=self.items(fields["next"][1], names, depth + 1, "next") if "next" in fields else (),
            line=node.start_mark.line + 1,
            retries=self.retries(fields, names),
            param_matrix=self.param_matrix(node, fields, names) if tag == SWEEP_TAG else None,
            extra=tuple(
                (key, self.value(value, names, key)) for key, (_, value) in fields.items() if key == "run_dependent"
            ),
        )

    def mapping(self, node: yaml.MappingNode, names: Sequence[str]) -> Dict[str, Tuple[YamlNode, YamlNode]]:
        fields: Dict[str, Tuple[YamlNode, YamlNode]] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node, names, "")
            if not isinstance(key, str):
                raise self.error(f"keys must be names, not {key!r}", key_node, names)
            if key in fields:
                raise self.error("given twice", key_node, names, key)
            fields[key] = (key_node, value_node)
        return fields

    def task_name(self, node: YamlNode, fields: Dict[str, Tuple[YamlNode, YamlNode]], parents: Sequence[str]) -> str:
        if "task_name" not in fields:
            raise self.error("every node needs a task_name", node, (*parents, "(node)"), "task_name")
        value_node = fields["task_name"][1]
        value = self.value(value_node, parents, "task_name")
        if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
            raise self.error(f"must be a Task name, not {value!r}", value_node, parents, "task_name")
        return value.strip()

    def slurm_params(self, fields: Dict[str, Tuple[YamlNode, YamlNode]], names: Sequence[str]) -> str:
        if "slurm_params" not in fields:
            return ""
        value_node = fields["slurm_params"][1]
        value = self.value(value_node, names, "slurm_params")
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.error(f"must be one string of sbatch options, not {value!r}", value_node, names, "slurm_params")
        return value.strip()

    def retries(self, fields: Dict[str, Tuple[YamlNode, YamlNode]], names: Sequence[str]) -> Optional[int]:
        if "retries" not in fields:
            return None
        value_node = fields["retries"][1]
        value = self.value(value_node, names, "retries")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(f"must be a whole number >= 0, not {value!r}", value_node, names, "retries")
        return value

    def param_matrix(
        self, node: YamlNode, fields: Dict[str, Tuple[YamlNode, YamlNode]], names: Sequence[str]
    ) -> Tuple[Tuple[str, Tuple[Any, ...]], ...]:
        if "param_matrix" not in fields:
            raise self.error("a !param_sweep needs a param_matrix (parameter: [values])", node, names, "param_matrix")
        matrix_node = fields["param_matrix"][1]
        if not isinstance(matrix_node, yaml.MappingNode) or not matrix_node.value:
            raise self.error("must map parameter names to lists of values", matrix_node, names, "param_matrix")
        matrix: List[Tuple[str, Tuple[Any, ...]]] = []
        for name, (_, values_node) in self.mapping(matrix_node, names).items():
            values = self.value(values_node, names, f"param_matrix.{name}")
            if not isinstance(values, list) or not values:
                raise self.error(
                    f"must be a non-empty list of values, not {values!r}", values_node, names, f"param_matrix.{name}"
                )
            matrix.append((name, tuple(values)))
        return tuple(matrix)

    def branch(self, node: yaml.MappingNode, parents: Tuple[str, ...], depth: int, kind: str) -> Branch:
        tag = next(t for t, k in BRANCH_TAGS.items() if k == kind)
        options: List[Tuple[str, Tuple[Item, ...]]] = []
        for key, (key_node, value_node) in self.mapping(node, parents).items():
            label = (*parents, f"[{key}]")
            if kind == "run_type" and (not key or not key.replace("_", "").isalnum()):
                raise self.error("a run type is a word such as DARK, GEOM, DATA or NOT_DARK", key_node, label)
            options.append((key, self.items(value_node, label, depth + 1, "")))
        if not options:
            raise self.error(f"{tag} needs at least one key with nodes under it", node, parents)
        if kind == "daq":
            keys = [key for key, _ in options]
            if len(keys) != 2 or DAQ_KEY not in keys:
                raise self.error(
                    f"{tag} has two keys, '{DAQ_KEY}' (LCLS-II runs) and one for LCLS-I runs (daq1), not {keys}",
                    node,
                    parents,
                )
        return Branch(kind, tuple(options), node.start_mark.line + 1)
