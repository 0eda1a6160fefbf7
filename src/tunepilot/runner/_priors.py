"""A study's priors: beliefs written on its parameters, and earlier studies (``prior_from``).

A parameter in mapping form may say where the user believes good values lie; a
study may start from the best trials of earlier ones::

    prior_from: foundation               # or {study: NAME, storage: URL, top_k: 5}, or a list
    sampler: {name: blend, model: null}  # priors only, no language model
    parameters:
      lr: {type: float, low: 1e-5, high: 1e-1, log: true, prior: 3e-4, confidence: medium}
      optimizer: {type: categorical, choices: [adam, sgd], prior: adam}

Only the ``blend`` sampler uses priors; for any other a prior is an error rather than
a silent no-op.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from tunepilot.exceptions import SearchSpaceError, SpecError, TunepilotError
from tunepilot.runner._parameters import parse_parameters
from tunepilot.space import CONFIDENCES, Belief, SearchSpace, parse_beliefs, split_priors

if TYPE_CHECKING:
    from tunepilot.runner._spec import StudySpec
    from tunepilot.samplers import StudyRef

#: Samplers that take a prior: tunepilot's LLMSampler in blend mode (llm mode runs the
#: model's own proposals, which a prior would have nothing to weigh).
PRIOR_SAMPLERS = ("blend",)

_Field = tuple[str, ...]


class PriorSource(BaseModel):
    """An earlier study whose best trials become a prior, as a spec writes it.

    In YAML: the study's name, or ``{study: NAME, storage: URL, top_k: 5}``. Without
    ``storage``, the study is looked for in the spec's own storage.

    Example:
        .. code-block:: python

            from tunepilot.runner import PriorSource

            source = PriorSource.model_validate("foundation")
            assert (source.study, source.storage, source.top_k) == ("foundation", None, 5)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    study: str = Field(min_length=1)
    storage: str | None = Field(default=None, min_length=1)
    top_k: int = Field(default=5, ge=1, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data: Any) -> Any:
        return {"study": data} if isinstance(data, str) else data


def take_priors(data: Any) -> Any:
    """Move the beliefs written on ``data``'s parameters into its ``priors``, checked.

    The parameters lose their ``prior`` and ``confidence`` keys (and become a
    :class:`SearchSpace` when they are valid); ``priors`` becomes ``{name: Belief}``,
    the beliefs written on parameters and those given under ``priors`` itself.

    Raises:
        PydanticCustomError: a belief is invalid, written twice, or given to a sampler
            that cannot use it; the error names the field (``parameters.lr.prior``).
    """
    if not isinstance(data, Mapping):
        return data
    definitions, written = split_priors(data.get("parameters"))
    given = data.get("priors")
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise _error(("priors",), "expected a mapping of parameter name to a value or "
                                  "{value: ..., confidence: low|medium|high}")
    out = dict(data)
    if "parameters" in data:
        out["parameters"] = definitions
    if not written and not given:
        out.pop("priors", None)
        _check_sampler(data, None)
        return out
    try:
        space = parse_parameters(definitions)
    except (SearchSpaceError, TypeError):
        out["priors"] = {}
        return out  # the parameters' own error is reported under 'parameters'
    out["parameters"] = space
    beliefs: dict[str, Belief] = {}
    fields: dict[str, _Field] = {}
    for name, raw in written.items():
        fields[name] = ("parameters", name, "prior")
        beliefs[name] = _written(space, name, raw)
    for name, raw in given.items():
        where = ("priors", str(name))
        if name in written:
            raise _error(where, f"also written on parameters.{name}; keep one of the two")
        try:
            beliefs.update(parse_beliefs(space, {name: raw}))
        except SearchSpaceError as exc:
            raise _error(where, str(exc).removeprefix(f"{name}: ")) from None
        fields[name] = where
    _check_sampler(data, next(iter(fields.values()), None))
    out["priors"] = beliefs
    return out


def _written(space: SearchSpace, name: str, raw: Mapping[str, Any]) -> Belief:
    confidence = raw.get("confidence", "medium")
    if confidence not in CONFIDENCES:
        raise _error(("parameters", name, "confidence"),
                     f"must be one of {', '.join(CONFIDENCES)}, got {confidence!r}")
    if "value" not in raw:
        raise _error(("parameters", name, "confidence"),
                     "a confidence without a prior; add prior: VALUE next to it")
    try:
        return parse_beliefs(space, {name: raw})[name]
    except SearchSpaceError as exc:
        problem = str(exc).removeprefix(f"{name}: ").removeprefix("prior ")
        raise _error(("parameters", name, "prior"), problem) from None


def _check_sampler(data: Mapping[str, Any], belief_field: _Field | None) -> None:
    sampler = data.get("sampler", "tpe")
    name = sampler.get("name") if isinstance(sampler, Mapping) else sampler
    if not isinstance(name, str) or name in PRIOR_SAMPLERS:
        return  # an invalid sampler is reported under 'sampler'
    if belief_field is not None:
        raise _error(belief_field, f"the {name} sampler cannot use a prior; use sampler: "
                                   "blend (with model: null for no language model)")
    if data.get("prior_from") not in (None, []):
        raise _error(("prior_from",), f"the {name} sampler cannot start from earlier "
                                      "studies; use sampler: blend (with model: null for no "
                                      "language model)")


def _error(field: _Field, message: str) -> PydanticCustomError:
    # format_errors puts a spec_field error at its field's location (and line).
    return PydanticCustomError("spec_field", "{message}", {"field": field, "message": message})


def check_prior_from(
    spec: StudySpec,
    storage: optuna.storages.BaseStorage | None = None,
    *,
    coming: Sequence[tuple[str, str]] = (),
) -> None:
    """Check, before any trial, that every study ``spec.prior_from`` names can give a prior.

    Args:
        spec: the study.
        storage: the spec's storage, opened; opened from ``spec.storage`` when None.
        coming: ``(study, storage URL)`` of studies that run before this one in the
            same call; they need not exist yet.

    Raises:
        SpecError: a study does not exist, has no completed trial, has several
            objectives or shares no parameter with ``spec``.
    """
    if spec.prior_from:
        check_study_refs(study_refs(spec), spec.parameters, storage=spec.storage,
                         where=spec.where, opened=storage, coming=coming)


def check_study_refs(
    refs: Sequence[StudyRef],
    space: SearchSpace,
    *,
    storage: str,
    where: str,
    opened: optuna.storages.BaseStorage | None = None,
    coming: Sequence[tuple[str, str]] = (),
) -> None:
    """Check that each of ``refs`` can give a prior over ``space`` now.

    Args:
        refs: the earlier studies.
        space: the parameters of the study they are a prior for.
        storage: the URL of that study's storage, where a ref without one is looked for.
        where: how error messages name the spec.
        opened: that storage, opened; opened from ``storage`` when None.
        coming: ``(study, storage URL)`` of studies that will exist by then.

    Raises:
        SpecError: as for :func:`check_prior_from`.
    """
    from tunepilot.runner._storage import open_storage
    from tunepilot.runner._studies import storage_url
    from tunepilot.samplers._sources import best_configs

    for ref in refs:
        url = ref.storage if ref.storage is not None else storage
        if (ref.study_name, url) in coming:
            continue
        try:
            found = (opened if ref.storage is None and opened is not None
                     else open_storage(storage_url(url)))
        except TunepilotError as exc:  # an SQLite file that does not exist
            if ref.storage is not None:
                raise SpecError(f"{where}: prior_from: {exc}") from None
            raise SpecError(f"{where}: prior_from: no study named {ref.study_name!r} in "
                            f"{url}, which does not exist yet; run that study first, or fix "
                            "the name") from None
        try:
            best_configs(ref, space, found)
        except SearchSpaceError as exc:
            problem = str(exc).removeprefix("prior_from: ")
            raise SpecError(f"{where}: prior_from: {problem} (in {url})") from None


def study_refs(spec: StudySpec) -> list[StudyRef]:
    """``spec.prior_from`` as :class:`~tunepilot.samplers.StudyRef` (storage None: the spec's)."""
    return as_study_refs(spec.prior_from)


def as_study_refs(sources: Sequence[PriorSource]) -> list[StudyRef]:
    """Each source as a :class:`~tunepilot.samplers.StudyRef`."""
    # Imported here: the spec and the classical samplers load without the LLM sampler.
    from tunepilot.samplers import StudyRef

    return [StudyRef(s.study, storage=s.storage, top_k=s.top_k) for s in sources]
