"""The one YAML loader behind every YAML tunepilot reads: specs, sweep configs, worlds.

PyYAML's safe loader builds an alias as a second reference to the anchored value,
so a few hundred bytes of nested anchors (a "billion laughs" document) describe
millions of values: cheap to load, but every walk over the result (validation,
JSON encoding, storing, rendering) pays for each one. :func:`compose_yaml` counts
the values a document expands to, and its nesting depth, before anything is
built, and refuses a document over the budget with a :class:`SpecError` that says
the limit and the variable that changes it.

Example:
    .. code-block:: python

        from tunepilot._yaml import load_yaml

        assert load_yaml("a: [1, 2]", source="inline") == {"a": [1, 2]}
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from tunepilot.exceptions import SpecError

__all__ = ["MAX_DEPTH_ENV", "MAX_NODES_ENV", "YAML_MAX_DEPTH", "YAML_MAX_NODES",
           "compose_yaml", "load_yaml"]

#: Values (scalars, lists and mappings, each alias counted as the values it repeats) a
#: document may expand to.
YAML_MAX_NODES = 100_000
#: How deeply lists and mappings may nest.
YAML_MAX_DEPTH = 64
MAX_NODES_ENV = "TUNEPILOT_MAX_YAML_NODES"
MAX_DEPTH_ENV = "TUNEPILOT_MAX_YAML_DEPTH"

_OPENING = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSING = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _limit(given: int | None, variable: str, default: int) -> int:
    if given is not None:
        return given
    raw = os.environ.get(variable)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SpecError(f"{variable}={raw!r} is not a whole number") from None
    if value < 1:
        raise SpecError(f"{variable} must be at least 1, got {value}")
    return value


def compose_yaml(
    text: str, *, source: str, max_nodes: int | None = None, max_depth: int | None = None
) -> yaml.Node | None:
    """The node graph of one YAML document, checked against the budget.

    Args:
        text: the document.
        source: what to call it in messages (a file name, ``the sweep form``).
        max_nodes: values the document may expand to; default ``TUNEPILOT_MAX_YAML_NODES``
            or :data:`YAML_MAX_NODES`.
        max_depth: deepest nesting allowed; default ``TUNEPILOT_MAX_YAML_DEPTH`` or
            :data:`YAML_MAX_DEPTH`.

    Returns:
        The root node, or ``None`` for an empty document.

    Raises:
        SpecError: not YAML (with the line), more than one document, nested too deeply,
            an alias that contains itself, or more values than ``max_nodes``.
    """
    nodes = _limit(max_nodes, MAX_NODES_ENV, YAML_MAX_NODES)
    depth = _limit(max_depth, MAX_DEPTH_ENV, YAML_MAX_DEPTH)
    loader = yaml.SafeLoader(text)
    try:
        _check_depth(loader, text, source, depth)
        loader.dispose()
        loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise SpecError(_syntax(exc, source, text)) from None
    finally:
        loader.dispose()
    if root is not None:
        _check_size(root, source, nodes)
    return root


def load_yaml(
    text: str, *, source: str, max_nodes: int | None = None, max_depth: int | None = None
) -> Any:
    """One YAML document as Python values (safe types only), within the budget.

    Args and Raises as :func:`compose_yaml`; an empty document is ``None``.
    """
    root = compose_yaml(text, source=source, max_nodes=max_nodes, max_depth=max_depth)
    return construct_yaml(root, source=source)


def construct_yaml(root: yaml.Node | None, *, source: str) -> Any:
    """Python values of a node graph from :func:`compose_yaml`.

    Raises:
        SpecError: a tag the safe loader does not know (``!!python/...``), or a value its
            tag cannot hold (``!!float abc``, an integer of more than 4,300 digits).
    """
    if root is None:
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise SpecError(_syntax(exc, source)) from None
    except (ValueError, TypeError) as exc:
        # Raised by the scalar constructors themselves, outside PyYAML's own errors.
        raise SpecError(f"{source}: a value cannot be read: {str(exc)[:200]}") from None
    finally:
        loader.dispose()


def _check_depth(loader: yaml.SafeLoader, text: str, source: str, limit: int) -> None:
    # On the event stream, before any node exists: PyYAML composes recursively, so a
    # deep enough document would otherwise end in a RecursionError.
    level = 0
    while loader.check_event():
        event = loader.get_event()  # type: ignore[no-untyped-call]
        if isinstance(event, _OPENING):
            level += 1
            if level > limit:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise SpecError(
                    f"{source}: line {line}: lists and mappings nest more than {limit} deep; "
                    f"flatten the document (the limit is {MAX_DEPTH_ENV})")
        elif isinstance(event, _CLOSING):
            level -= 1


def _check_size(root: yaml.Node, source: str, limit: int) -> None:
    """Count the values ``root`` expands to, each shared node once per reference."""
    sizes: dict[int, int] = {}
    # Iterative post-order walk: (node, children done?). A node seen again while open
    # is an alias inside its own anchor.
    open_ids: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_ids.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            if total > limit:
                raise SpecError(
                    f"{source}: the document expands to more than {limit:,} values (aliases "
                    f"repeat what their anchor holds); write it out smaller (the limit is "
                    f"{MAX_NODES_ENV})")
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in open_ids:
            line = node.start_mark.line + 1 if node.start_mark else "?"
            raise SpecError(f"{source}: line {line}: an alias refers to a value that contains "
                            "it; YAML that refers to itself cannot be used")
        open_ids.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _syntax(exc: yaml.YAMLError, source: str, text: str = "") -> str:
    mark = getattr(exc, "problem_mark", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    lines = text.splitlines()
    shown = ""
    if mark is not None and 0 <= mark.line < len(lines) and lines[mark.line].strip():
        shown = f" (the line reads {lines[mark.line].strip()[:120]!r})"
    return f"{source}: not valid YAML{at}: {problem}{shown}"
