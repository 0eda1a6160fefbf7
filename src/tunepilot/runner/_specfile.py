"""Spec files: one or several studies in YAML, ``${oc.env:VAR}``, command-line overrides.

A file declares one study at the top level, or several under ``studies``; the other
top-level keys are defaults every study inherits (a study's own key wins, whole)::

    objective: train:objective
    direction: maximize
    storage: ${oc.env:TUNEPILOT_STORAGE,sqlite:///phases.db}
    n_trials: 30
    parameters: {lr: 'tag(log, interval(1e-5, 1e-1))'}
    studies:
      - name: foundation
      - name: finetune
        n_trials: 10
        pruner: median

Values are interpolated by OmegaConf (``${oc.env:VAR}``, ``${oc.env:VAR,default}``,
``${other.key}``). Every problem is reported as one line that names the file, the
line and the field, and says what to write instead.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tunepilot._yaml import compose_yaml, construct_yaml
from tunepilot.exceptions import SpecError
from tunepilot.runner._spec import StudySpec, format_errors

_Where = tuple[str | int, ...]
_LineMap = dict[tuple[str, ...], int]
# Keys that may be written as a bare name and still take nested overrides, with the
# name a study gets when it sets neither.
_NAMED = {"sampler": "tpe", "pruner": "none"}
# Keys that replace each other: a study that sets one drops the other it inherited.
_ALTERNATIVES = {"direction": "directions", "directions": "direction"}


def load_spec(
    path: str | Path, *, study: str | None = None, overrides: Sequence[str] = ()
) -> StudySpec:
    """Read and validate one study of a YAML spec file.

    Args:
        path: the spec file.
        study: which study of a multi-study file; not needed when it holds one.
        overrides: ``key=value`` changes in Hydra's syntax, applied to the study
            (``n_trials=50``, ``sampler.n_startup_trials=5``, ``parameters.lr=interval(0,1)``).

    Returns:
        The study, remembering its file so the objective's module is found next to it.

    Raises:
        SpecError: the file is missing, is not YAML, a field is invalid, or the file
            holds several studies and ``study`` names none of them; the message names
            the file, the line and the field and says what to write instead.

    Example:
        .. code-block:: python

            from tunepilot.runner import load_spec

            spec = load_spec("examples/pruning/spec.yaml", study="sgd-pruned", overrides=["n_trials=5"])
    """
    studies = load_studies(path, overrides=overrides, only=study)
    if len(studies) > 1:
        names = ", ".join(s.name for s in studies)
        raise SpecError(f"{path}: studies: the file holds {len(studies)} studies ({names}); "
                        "choose one by name (--study NAME on the command line)")
    return studies[0]


def load_studies(
    path: str | Path, *, overrides: Sequence[str] = (), only: str | None = None
) -> list[StudySpec]:
    """Read and validate every study of a YAML spec file, in file order.

    Args:
        path: the spec file.
        overrides: ``key=value`` changes applied to every study.
        only: keep just the study of this name.

    Raises:
        SpecError: as for :func:`load_spec`; all problems of all studies in one line.
    """
    path = Path(path)
    data, lines = _read(path)
    if not isinstance(data, Mapping):
        raise SpecError(
            f"{path}: expected a mapping with name, objective, direction, parameters "
            f"and n_trials (or a list of studies), got {type(data).__name__}"
        )
    data = _interpolate(data, path, lines)
    entries = _entries(data, path, lines)
    if only is not None:
        names = [str(entry.get("name")) for entry, _ in entries]
        if only not in names:
            raise SpecError(f"{path}: no study named {only!r}; the file holds "
                            f"{', '.join(names)}")
        entries = [pair for pair in entries if str(pair[0].get("name")) == only]
    changed = _parse_overrides(overrides, path)

    studies: list[StudySpec] = []
    problems: list[str] = []
    for merged, origin in entries:
        for key, value in changed:
            _set(merged, key, value, path)
        try:
            spec = StudySpec.model_validate(merged)
        except ValidationError as exc:
            locate = functools.partial(_locate, origin=origin, lines=lines,
                                       changed={k for k, _ in changed})
            message = format_errors(exc, StudySpec, locate=locate)
            problems.extend(m for m in message.split("; ") if m not in problems)
            continue
        spec._source = path
        studies.append(spec)
    if problems:
        raise SpecError(f"{path}: {'; '.join(problems)}")
    return studies


def _read(path: Path) -> tuple[Any, _LineMap]:
    if not path.is_file():
        raise SpecError(f"{path}: no such file; give the path of a YAML study spec")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the file: {exc}") from None
    node = compose_yaml(text, source=str(path))
    data = construct_yaml(node, source=str(path))
    lines: _LineMap = {}
    if node is not None:
        _map_lines(node, (), lines, path)
    return data, lines


def _map_lines(node: yaml.Node, at: tuple[str, ...], lines: _LineMap, path: Path) -> None:
    lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                raise SpecError(f"{path}: line {key_node.start_mark.line + 1}: "
                                f"{_label(at + (key,))}: the key appears twice; keep one")
            seen.add(key)
            lines[at + (key,)] = key_node.start_mark.line + 1
            _map_lines(value_node, at + (key,), lines, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _map_lines(item, at + (str(index),), lines, path)


def _interpolate(data: Mapping[str, Any], path: Path, lines: _LineMap) -> dict[str, Any]:
    if not _has_interpolation(data):
        return dict(data)
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        resolved = OmegaConf.to_container(OmegaConf.create(dict(data)), resolve=True)
    except OmegaConfBaseException as exc:
        full_key = str(getattr(exc, "full_key", "") or "")
        where = tuple(full_key.replace("[", ".").replace("]", "").split(".")) if full_key else ()
        problem = str(getattr(exc, "msg", "") or exc).splitlines()[0]
        if "Environment variable" in problem and "not found" in problem:
            variable = problem.split("'")[1] if "'" in problem else "it"
            problem = (f"the environment variable {variable} is not set; export it, or give a "
                       f"default: ${{oc.env:{variable},default}}")
        line = _line(where, lines)
        at = f"line {line}: " if line is not None else ""
        raise SpecError(f"{path}: {at}{full_key or 'interpolation'}: {problem}") from None
    assert isinstance(resolved, dict)
    return {str(k): v for k, v in resolved.items()}


def _has_interpolation(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, Mapping):
        return any(_has_interpolation(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_interpolation(v) for v in value)
    return False


def _entries(
    data: Mapping[str, Any], path: Path, lines: _LineMap
) -> list[tuple[dict[str, Any], dict[str, _Where]]]:
    """Each study's merged mapping, and where in the file each of its keys was written."""
    if "studies" not in data:
        return [(dict(data), {str(k): (str(k),) for k in data})]
    studies = data["studies"]
    defaults = {k: v for k, v in data.items() if k != "studies"}
    if "name" in defaults:
        raise SpecError(f"{path}: line {_line(('name',), lines)}: name: give each study its own "
                        "name under studies; the top-level keys are defaults for all of them")
    if not isinstance(studies, list) or not studies:
        raise SpecError(f"{path}: line {_line(('studies',), lines)}: studies: expected a list "
                        "of studies, each a mapping with at least a name")
    entries = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(studies):
        if not isinstance(entry, Mapping):
            raise SpecError(f"{path}: line {_line(('studies', str(index)), lines)}: "
                            f"studies[{index}]: expected a mapping with a name, got "
                            f"{type(entry).__name__}")
        name = entry.get("name")
        if isinstance(name, str) and name in seen:
            raise SpecError(f"{path}: line {_line(('studies', str(index), 'name'), lines)}: "
                            f"studies[{index}].name: {name!r} is also the name of "
                            f"studies[{seen[name]}]; give each study its own name")
        if isinstance(name, str):
            seen[name] = index
        inherited = {k: v for k, v in defaults.items() if _ALTERNATIVES.get(k) not in entry}
        origin: dict[str, _Where] = {str(k): (str(k),) for k in inherited}
        origin.update({str(k): ("studies", index, str(k)) for k in entry})
        origin[""] = ("studies", index)
        entries.append(({**inherited, **entry}, origin))
    return entries


def _parse_overrides(overrides: Sequence[str], path: Path) -> list[tuple[str, Any]]:
    """``key=value`` texts as (dotted key, value); a deletion's value is ``_DELETE``."""
    if not overrides:
        return []
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed: list[tuple[str, Any]] = []
    for text in overrides:
        key = text.split("=", 1)[0].lstrip("+~")
        if key.startswith("parameters.") and "=" in text:
            # The expression stays text: the spec parses it as a search-space override.
            parsed.append((key, text.split("=", 1)[1]))
            continue
        try:
            override = parser.parse_override(text)
        except HydraException as exc:
            raise SpecError(f"{path}: override {text!r}: {str(exc).splitlines()[0]}; write "
                            "key=value, e.g. n_trials=50 or sampler.name=tpe") from None
        if override.is_delete():
            parsed.append((override.key_or_group, _DELETE))
        elif override.is_sweep_override():
            raise SpecError(f"{path}: override {text!r}: a sweep belongs under parameters, "
                            f"e.g. parameters.{key}={text.split('=', 1)[1]}")
        else:
            parsed.append((override.key_or_group, override.value()))
    return parsed


_DELETE = object()


def _set(target: dict[str, Any], key: str, value: Any, path: Path) -> None:
    parts = key.split(".")
    node = target
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if isinstance(child, str) and part in _NAMED and depth == 0:
            child = {"name": child}
        elif child is None:
            child = {"name": _NAMED[part]} if part in _NAMED and depth == 0 else {}
        elif not isinstance(child, Mapping):
            raise SpecError(f"{path}: override {key}: {'.'.join(parts[:depth + 1])} is "
                            f"{child!r}, not a mapping with keys")
        node[part] = child = dict(child)
        node = child
    if value is _DELETE:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def _locate(
    loc: tuple[int | str, ...], *, origin: dict[str, _Where], lines: _LineMap, changed: set[str]
) -> tuple[str, int | None]:
    """The label of an error's field and its line in the file."""
    dotted = ".".join(str(p) for p in loc)
    if any(dotted == k or dotted.startswith(f"{k}.") for k in changed):
        return f"{dotted} (from the command line)", None
    top = str(loc[0]) if loc else ""
    if top in origin:
        full: _Where = (*origin[top], *loc[1:])
    else:  # a missing field, or the study as a whole: at the study's own mapping
        full = (*origin.get("", ()), *loc)
    return _label(full), _line(tuple(str(p) for p in full), lines)


def _label(full: Sequence[str | int]) -> str:
    text = ""
    for index, part in enumerate(full):
        after_studies = index > 0 and full[index - 1] == "studies"
        if isinstance(part, int) or (after_studies and str(part).isdigit()):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _line(at: tuple[str, ...], lines: _LineMap) -> int | None:
    while at not in lines and at:
        at = at[:-1]
    return lines.get(at)
