"""The online optimizer's HTTP API: ``/api/v1/online/...`` and OTLP/HTTP ``/v1/traces``.

Routers find the :class:`OnlineService` at ``request.app.state.online``;
:func:`tunepilot.server.create_app` puts it there and mounts both routers, behind
the same token check as every other route.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from tunepilot.exceptions import ConflictError
from tunepilot.online._collector import BatchResult
from tunepilot.online._config import AppConfig
from tunepilot.online._otlp import (
    IngestLimits,
    PayloadTooLarge,
    decode_traces,
    export_traces,
    json_response,
    protobuf_response,
)
from tunepilot.online._service import OnlineService

__all__ = ["ONLINE_PREFIX", "OTLP_PATHS", "build_online_app", "online_router", "otlp_router"]

ONLINE_PREFIX = "/api/v1/online"
#: The paths that take protobuf bodies besides JSON.
OTLP_PATHS = frozenset({"/v1/traces"})
_PROTOBUF = "application/x-protobuf"
#: Which setting raises each limit of :class:`IngestLimits`, for the 413 messages.
_LIMIT_SETTINGS = "TUNEPILOT_MAX_DECOMPRESSED_BYTES, TUNEPILOT_MAX_BATCH_ITEMS"

online_router = APIRouter(prefix=ONLINE_PREFIX, tags=["online"])
otlp_router = APIRouter(tags=["online"])


def _service(request: Request) -> OnlineService:
    service: OnlineService | None = getattr(request.app.state, "online", None)
    if service is None:
        raise HTTPException(503, "the online optimizer is not running in this server")
    return service


ServiceDep = Annotated[OnlineService, Depends(_service)]
AppName = Annotated[str, Path(description="The application's name.")]


def _ingest_limiter(request: Request) -> anyio.CapacityLimiter:
    # One batch at a time in a worker thread: batches are CPU work under one GIL, so
    # more threads gain nothing and would starve the event loop (and the split it serves).
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "online_ingest_limiter", None)
    if limiter is None:
        limiter = request.app.state.online_ingest_limiter = anyio.CapacityLimiter(1)
    return limiter


def _limits(request: Request) -> IngestLimits:
    limits: IngestLimits | None = getattr(request.app.state, "ingest_limits", None)
    return limits if limits is not None else IngestLimits()


def _too_large(message: str) -> Response:
    return _json({"detail": f"{message} (limits: {_LIMIT_SETTINGS})", "accepted": 0,
                  "duplicates": 0, "rejected": []}, 413)


def _json(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


def _known(service: OnlineService, app: str) -> None:
    if app not in service.optimizer.apps():
        raise HTTPException(404, f"no application {app!r}; create it with POST {ONLINE_PREFIX}/apps")


def _change(service: OnlineService, app: str, change: Callable[[], None]) -> None:
    """Apply ``change`` to a known app between event batches; a conflict answers 409."""
    _known(service, app)
    with service.collector.lock:
        try:
            change()
        except ConflictError as exc:
            raise HTTPException(409, str(exc)) from None


def _batch_response(result: BatchResult) -> Response:
    body = result.as_dict()
    if result.rejected:
        body["detail"] = (f"{len(result.rejected)} event(s) refused, listed in 'rejected' with a "
                          "reason; the others were taken (re-sending them is safe: repeats "
                          "count once)")
        return _json(body, 422)
    return _json(body)


@online_router.post("/events", summary="Send a batch of events")
async def post_events(request: Request, service: ServiceDep) -> Response:
    """Take a JSON list of events (or ``{"events": [...]}``), at most 10,000 per request.

    Answers 200 with ``accepted`` and ``duplicates`` counts when every event was good;
    422 with the same counts plus ``rejected`` (index, event_id, reason, message of each
    refused event) when some were not: the good ones of the batch are taken anyway.
    A body of more JSON objects than that many events could hold is refused (413)
    before it is parsed.
    """
    body = await request.body()
    limits = _limits(request)
    if body.count(b"{") > limits.max_json_objects:
        return _too_large(f"the body holds more than {limits.max_json_objects:,} JSON objects; "
                          f"send at most {limits.max_items:,} events per request")
    try:
        result = await anyio.to_thread.run_sync(service.collector.submit_json, body,
                                                limiter=_ingest_limiter(request))
    except ValueError as exc:
        return _json({"detail": str(exc), "accepted": 0, "duplicates": 0, "rejected": []}, 422)
    return _batch_response(result)


@online_router.get("/apps", summary="List applications")
def list_apps(service: ServiceDep) -> Response:
    return _json([_app_config(service, app).model_dump(mode="json")
                  for app in sorted(service.optimizer.apps())])


@online_router.post("/apps", status_code=201, summary="Create an application")
def create_online_app(config: AppConfig, service: ServiceDep) -> Response:
    if config.name in service.optimizer.apps():
        raise HTTPException(409, f"application {config.name!r} exists; "
                                 f"change it with PUT {ONLINE_PREFIX}/apps/{config.name}")
    with service.collector.lock:
        service.optimizer.add_app(config)
    return _json(config.model_dump(mode="json"), 201)


@online_router.put("/apps/{app}", summary="Replace an application's configuration")
def replace_online_app(app: AppName, config: AppConfig, service: ServiceDep) -> Response:
    """Variants, constraints, context and policy change; windows, leaders and decisions stay.

    Refused with 409 when a variant that leads a segment or is being rolled out would go.
    """
    if config.name != app:
        raise HTTPException(422, f"the body names application {config.name!r}, the path {app!r}")
    _change(service, app, lambda: service.optimizer.add_app(config))
    return _json(config.model_dump(mode="json"))


@online_router.delete("/apps/{app}", status_code=204, summary="Delete an application")
def delete_online_app(app: AppName, service: ServiceDep) -> Response:
    """Delete the application, its state and its decisions; its name can be used again.

    Refused with 409 while a rollout is running or paused (abort it first), or when the
    application is declared in the online config file (it would come back at restart).
    """
    _change(service, app, lambda: service.optimizer.remove_app(app))
    return Response(status_code=204)


@online_router.get("/apps/{app}", summary="An application: config, split, leaders, rollouts, windows")
def get_app(app: AppName, service: ServiceDep) -> Response:
    _known(service, app)
    optimizer = service.optimizer
    return _json({
        "config": _app_config(service, app).model_dump(mode="json"),
        "split": optimizer.split(app),
        "leaders": optimizer.leaders(app),
        "rollouts": {segment: rollout.model_dump(mode="json")
                     for segment, rollout in optimizer.rollouts(app).items()},
        "windows": optimizer.stats(app),
        "events": service.collector.stats()["apps"].get(app),
    })


@online_router.get("/apps/{app}/split", summary="Current traffic split and the variants")
async def get_split(app: AppName, service: ServiceDep) -> Response:
    """What :class:`tunepilot.online.Client` caches: weights per variant id and each variant.

    Served on the event loop (no worker thread): it only reads the current split, so it
    is not queued behind event batches being validated in worker threads.
    """
    start = time.perf_counter()
    _known(service, app)
    config = _app_config(service, app)
    response = _json({
        "app": app,
        "baseline": config.baseline,
        "split": service.optimizer.split(app),
        "variants": [v.model_dump(mode="json") for v in config.variants],
        "context": [f.model_dump(mode="json") for f in config.context],
        "segments": _segment_splits(service, config),
    })
    service.split_ms.append(1000 * (time.perf_counter() - start))
    return response


def _segment_splits(service: OnlineService, config: AppConfig) -> dict[str, dict[str, float]]:
    """The split of every segment the optimizer knows, by segment label.

    The optimizer answers per request attributes; a label is turned back into
    attributes that fall in it (checked by labelling them again: a label that cannot be
    rebuilt is left out, and the client then uses the baseline for it, as the optimizer
    does for a segment it does not know).
    """
    if not config.context:
        return {}
    by_part: list[dict[str, Any]] = []
    for field in config.context:
        candidates: list[Any] = [None]
        if field.bins is not None:
            candidates += [field.bins[0] - 1.0, *field.bins]
        elif field.values is not None:
            candidates += [*field.values, "\x00" + "".join(field.values)]
        by_part.append({field.segment(value): value for value in candidates})
    out: dict[str, dict[str, float]] = {}
    for label in service.optimizer.leaders(config.name):
        parts = label.split("&")
        if len(parts) != len(config.context):
            continue
        attributes: dict[str, Any] = {}
        for field, part, known in zip(config.context, parts, by_part):
            if part in known:
                value = known[part]
            elif part.startswith(f"{field.attribute}="):
                value = part[len(field.attribute) + 1:]
            else:
                break
            if value is not None:
                attributes[field.attribute] = value
        else:
            if config.segment(attributes) == label:
                out[label] = service.optimizer.split(config.name, attributes)
    return out


@online_router.get("/apps/{app}/decisions", summary="Decisions with their evidence, newest first")
def get_decisions(
    app: AppName, service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    _known(service, app)
    return _json([d.model_dump(mode="json") for d in service.optimizer.decisions(app, limit=limit)])


@online_router.get("/apps/{app}/rollout", summary="The application's rollout, if any")
def get_rollout(app: AppName, service: ServiceDep) -> Response:
    _known(service, app)
    rollout = service.optimizer.rollout(app)
    return _json(rollout.model_dump(mode="json") if rollout is not None else None)


def _control(action: str) -> Any:
    def control(app: AppName, service: ServiceDep) -> Response:
        _known(service, app)
        with service.collector.lock:
            getattr(service.optimizer, action)(app)
        rollout = service.optimizer.rollout(app)
        return _json(rollout.model_dump(mode="json") if rollout is not None else None)

    control.__name__ = f"{action}_rollout"
    control.__doc__ = f"{action.capitalize()} the application's rollout."
    return control


for _action in ("pause", "resume", "abort"):
    online_router.add_api_route(f"/apps/{{app}}/rollout/{_action}", _control(_action),
                                methods=["POST"], summary=f"{_action.capitalize()} the rollout")


@online_router.get("/stats", summary="Event counts (accepted, duplicates, rejected by reason) and step timing")
def get_stats(service: ServiceDep) -> Response:
    return _json(service.stats())


@otlp_router.post("/v1/traces", summary="OTLP/HTTP traces (JSON or protobuf)")
async def post_traces(request: Request, service: ServiceDep) -> Response:
    """Spans of LLM calls in, events out (see :mod:`tunepilot.online._otlp` for the mapping).

    Answers in the request's encoding, with ``partial_success`` counting refused spans,
    as the OTLP/HTTP specification asks; an undecodable body gets 400.
    """
    content_type = request.headers.get("content-type", "")
    protobuf = content_type.split(";")[0].strip().lower() in (_PROTOBUF, "application/protobuf")
    body = await request.body()

    limits = _limits(request)

    def work() -> Any:
        spans = decode_traces(body, content_type=content_type,
                              content_encoding=request.headers.get("content-encoding", ""),
                              limits=limits)
        return export_traces(service.collector, spans)

    try:
        result = await anyio.to_thread.run_sync(work, limiter=_ingest_limiter(request))
    except PayloadTooLarge as exc:
        service.collector.count("otlp_too_large")
        message = f"{exc} (limits: {_LIMIT_SETTINGS})"
        if protobuf:
            return _otlp_error(message, status=413)
        return JSONResponse({"code": 8, "message": message}, status_code=413)
    except ValueError as exc:
        service.collector.count("otlp_bad_requests")
        if protobuf:
            return _otlp_error(str(exc))
        return JSONResponse({"code": 3, "message": str(exc)}, status_code=400)
    if protobuf:
        return Response(protobuf_response(result), media_type=_PROTOBUF)
    return _json(json_response(result))


def _otlp_error(message: str, *, status: int = 400) -> Response:
    # A google.rpc.Status (code 3, INVALID_ARGUMENT, or 8, RESOURCE_EXHAUSTED for 413),
    # encoded by hand: two fields do not justify another dependency.
    code = 8 if status == 413 else 3
    text = message.encode()
    length, size = bytearray(), len(text)
    while True:
        length.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            break
    return Response(bytes([0x08, code, 0x12]) + bytes(length) + text, status_code=status,
                    media_type=_PROTOBUF)


def _app_config(service: OnlineService, app: str) -> AppConfig:
    config: AppConfig = service.optimizer.app_config(app)
    return config


def build_online_app(service: OnlineService) -> FastAPI:
    """A bare app serving only the online API over ``service`` (no auth, no database).

    For driving an optimizer in-process through the collector API (the simulator,
    tests) with httpx's ASGI transport or FastAPI's TestClient.

    Example:
        .. code-block:: python

            from fastapi.testclient import TestClient

            client = TestClient(build_online_app(OnlineService(optimizer)))
            client.post("/api/v1/online/events", json=[...])
    """
    app = FastAPI(title="tunepilot online")
    app.state.online = service
    app.include_router(online_router)
    app.include_router(otlp_router)
    return app
