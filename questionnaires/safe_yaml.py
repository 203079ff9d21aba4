"""YAML from outside the process read without aliases and within a node budget.

`yaml.safe_load` builds no objects of its own choosing, but it still expands aliases: a
472-byte plan of nested aliases (the "billion laughs") became a 663 MB answer and took 1.6 GB
of server memory. Our files (questionnaires, sampling plans, design sidecars) never need an
alias, so `SafeYamlLoader` refuses every alias and anchor with a message naming the line, and
stops any document past `MAX_NODES` nodes. Every YAML the platform reads from a person or a
request goes through it (the service's own bundled data files as well).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent

__all__ = ["MAX_NODES", "SafeYamlLoader", "YamlRefused", "load_yaml"]

MAX_NODES = 200_000  # a large plan or questionnaire has a few thousand


class YamlRefused(yaml.YAMLError):
    """An alias, an anchor or too many nodes: refused before anything is built."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.problem = message
        self.line = line

    def __str__(self) -> str:
        return self.problem if self.line is None else f"line {self.line}: {self.problem}"


class SafeYamlLoader(yaml.SafeLoader):
    """A SafeLoader without aliases or anchors, and with a cap on the number of nodes."""

    def __init__(self, stream: str, *, max_nodes: int = MAX_NODES) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._max_nodes = max_nodes

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, AliasEvent):
            raise YamlRefused(
                f"aliases (*{event.anchor}) are not allowed; write the value out in full", line
            )
        if isinstance(event, ScalarEvent | CollectionStartEvent) and event.anchor is not None:
            raise YamlRefused(
                f"anchors (&{event.anchor}) are not allowed; write the value out in full", line
            )
        self._nodes += 1
        if self._nodes > self._max_nodes:
            raise YamlRefused(f"the document has more than {self._max_nodes} values", line)
        return super().compose_node(parent, index)


def load_yaml(text: str, *, max_nodes: int = MAX_NODES) -> Any:
    """One YAML document as plain data (None for an empty one); YamlRefused or another
    yaml.YAMLError when it cannot be read safely."""
    loader = SafeYamlLoader(text, max_nodes=max_nodes)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
