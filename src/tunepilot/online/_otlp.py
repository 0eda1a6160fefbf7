"""OTLP/HTTP traces (JSON or protobuf) to events, through the OpenTelemetry GenAI conventions.

One span of an LLM call becomes one :class:`Event`:

============================================  ======================================
span                                          event
============================================  ======================================
``tunepilot.app`` (span, else resource);      ``app``
else resource ``service.name``
``tunepilot.variant``                         ``variant`` (required)
``tunepilot.event_id``, else trace id +       ``event_id``
span id in hex
end time (start time if unset)                ``timestamp``
end time - start time                         ``latency_ms``
``gen_ai.usage.input_tokens``                 ``input_tokens``
(older: ``gen_ai.usage.prompt_tokens``)
``gen_ai.usage.output_tokens``                ``output_tokens``
(older: ``gen_ai.usage.completion_tokens``)
``tunepilot.cost`` (USD)                      ``cost``
status ERROR: ``error.type``, else "error"    ``error``
mean ``gen_ai.evaluation.score.value`` of     ``quality`` (must lie in [0, 1])
``gen_ai.evaluation.result`` span events;
else ``tunepilot.quality``
``tunepilot.feedback``                        ``feedback``
``tunepilot.key``                             ``key``
``gen_ai.system``, ``gen_ai.provider.name``,  ``attributes`` (same names), and
``gen_ai.request.model``,                     ``tunepilot.attr.NAME`` as ``NAME``
``gen_ai.response.model``,
``gen_ai.operation.name``,
``gen_ai.request.temperature``,
``gen_ai.request.max_tokens``
============================================  ======================================

A span that carries an evaluation score but no token usage (an evaluation reported
on its own span, parented to the evaluated call) becomes a late-feedback event with
``attributes["feedback_for"]`` = ``tunepilot.feedback_for``, else trace id + parent
span id. Spans with no ``gen_ai.*`` and no ``tunepilot.*`` attribute are not LLM
calls and are skipped; LLM spans without ``tunepilot.variant`` or an application
are refused with a reason.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tunepilot.online._collector import BatchResult, Collector, Rejection

__all__ = ["IngestLimits", "OtlpResult", "PayloadTooLarge", "decode_traces", "export_traces",
           "json_response", "protobuf_response"]

AttributeValue = str | int | float | bool

_EVALUATION = "gen_ai.evaluation.result"
_SCORE = "gen_ai.evaluation.score.value"
_STATUS_ERROR = 2
_PASSED_THROUGH = (
    "gen_ai.system", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
    "gen_ai.operation.name", "gen_ai.request.temperature", "gen_ai.request.max_tokens",
)
_ATTR_PREFIX = "tunepilot.attr."


@dataclass
class _Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    attributes: dict[str, AttributeValue]
    resource: dict[str, AttributeValue]
    events: list[tuple[str, dict[str, AttributeValue]]] = field(default_factory=list)
    status_code: int = 0
    status_message: str = ""


@dataclass(frozen=True)
class IngestLimits:
    """Bounds on the work one OTLP body or event batch may cause.

    Args:
        max_decompressed_bytes: most bytes a gzip or deflate body may inflate to.
        max_items: most spans (or events) in one body, counted before parsing them.
    """

    max_decompressed_bytes: int = 32 * 1024 * 1024
    max_items: int = 10_000

    @property
    def max_json_objects(self) -> int:
        """Most ``{`` a JSON body may hold: room for each item's nested objects.

        Counting braces costs one pass in C; it bounds what parsing may build before
        the items can be counted (a brace inside a string counts too).
        """
        return 64 * self.max_items


class PayloadTooLarge(ValueError):
    """The body is within the size limit but would cause too much work (HTTP 413)."""


@dataclass
class OtlpResult:
    """The outcome of one export: the collector's batch result plus the skipped spans."""

    batch: BatchResult
    spans: int
    skipped: int

    @property
    def rejected(self) -> int:
        return len(self.batch.rejected)

    def error_message(self) -> str:
        shown = self.batch.rejected[:5]
        more = len(self.batch.rejected) - len(shown)
        text = "; ".join(f"span {r.event_id or r.index}: {r.reason}: {r.message}" for r in shown)
        return text + (f"; and {more} more" if more > 0 else "")


def decode_traces(
    body: bytes, *, content_type: str, content_encoding: str = "",
    limits: IngestLimits = IngestLimits(),
) -> list[_Span]:
    """Spans of an ``ExportTraceServiceRequest`` in OTLP/HTTP JSON or protobuf.

    Raises:
        PayloadTooLarge: the body inflates past ``limits.max_decompressed_bytes`` or
            holds more than ``limits.max_items`` spans; found before building them.
        ValueError: the body cannot be decoded (the message says why).
    """
    body = _decompress(body, content_encoding, limits.max_decompressed_bytes)
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json":
        import orjson

        if body.count(b"{") > limits.max_json_objects:
            raise PayloadTooLarge(
                f"the OTLP/JSON body holds more than {limits.max_json_objects:,} objects; "
                f"send at most {limits.max_items:,} spans per request")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"the body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError('an OTLP/JSON body is an object: {"resourceSpans": [...]}')
        spans = list(itertools.islice(_json_spans(data), limits.max_items + 1))
        if len(spans) > limits.max_items:
            raise PayloadTooLarge(f"the body holds more than {limits.max_items:,} spans; "
                                  "send fewer per request")
        return spans
    if media in ("application/x-protobuf", "application/protobuf"):
        _count_protobuf_spans(body, limits.max_items)
        return list(_protobuf_spans(body))
    raise ValueError(
        f"unsupported Content-Type {content_type!r}: send application/json or application/x-protobuf"
    )


def export_traces(collector: Collector, spans: list[_Span]) -> OtlpResult:
    """Map spans to events and submit them; refusals are counted by the collector."""
    items: list[dict[str, Any]] = []
    refused: list[tuple[str | None, Rejection]] = []
    skipped = 0
    for index, span in enumerate(spans):
        mapped = _to_event(span)
        if mapped is None:
            skipped += 1
        elif isinstance(mapped, Rejection):
            refused.append((_app_of(span), Rejection(
                index, mapped.event_id, mapped.reason, mapped.message, _app_of(span))))
        else:
            items.append(mapped)
    batch = collector.submit(items) if items else BatchResult()
    for app, rejection in refused:
        collector.reject([rejection], app=app)
    batch.rejected.extend(rejection for _, rejection in refused)
    collector.count("otlp_spans", len(spans))
    collector.count("otlp_spans_skipped", skipped)
    return OtlpResult(batch=batch, spans=len(spans), skipped=skipped)


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise ValueError(f"unsupported Content-Encoding {encoding!r}: use gzip, deflate or none")
    # Inflated in steps that stop at the limit: a small bomb never becomes a large buffer.
    wbits = 31 if encoding == "gzip" else 15
    inflater = zlib.decompressobj(wbits)
    out = bytearray()
    try:
        pending = body
        while pending:
            out += inflater.decompress(pending, limit + 1 - len(out))
            if len(out) > limit:
                raise PayloadTooLarge(
                    f"the {encoding} body inflates to more than {limit:,} bytes; send less "
                    "per request")
            pending = inflater.unconsumed_tail
            if inflater.eof:
                # gzip allows several members; a second one is inflated the same way.
                pending = inflater.unused_data
                if pending and encoding == "gzip":
                    inflater = zlib.decompressobj(wbits)
                    continue
                break
        if not inflater.eof:
            raise ValueError("the stream ends early")
    except PayloadTooLarge:
        raise
    except (zlib.error, ValueError) as exc:
        raise ValueError(f"the body is not valid {encoding}: {exc}") from None
    return bytes(out)


def _app_of(span: _Span) -> str | None:
    app = span.attributes.get("tunepilot.app", span.resource.get("tunepilot.app",
                                                                 span.resource.get("service.name")))
    return app if isinstance(app, str) else None


def _to_event(span: _Span) -> dict[str, Any] | Rejection | None:
    attrs = span.attributes
    if not any(k.startswith(("gen_ai.", "tunepilot.")) for k in attrs) and not any(
        name == _EVALUATION for name, _ in span.events
    ):
        return None
    event_id = attrs.get("tunepilot.event_id") or (span.trace_id + span.span_id)
    event_id = str(event_id)
    app = _app_of(span)
    if app is None:
        return Rejection(0, event_id, "missing_app",
                         "set the span or resource attribute 'tunepilot.app' (or 'service.name')")
    variant = attrs.get("tunepilot.variant")
    if not isinstance(variant, str):
        return Rejection(0, event_id, "missing_variant",
                         "set the span attribute 'tunepilot.variant' to the variant id used")
    end_ns = span.end_ns or span.start_ns
    if end_ns <= 0:
        return Rejection(0, event_id, "bad_timestamp", "the span has neither an end nor a start time")
    event: dict[str, Any] = {"app": app, "variant": variant, "event_id": event_id,
                             "timestamp": end_ns / 1e9}
    if span.start_ns and span.end_ns and span.end_ns >= span.start_ns:
        event["latency_ms"] = (span.end_ns - span.start_ns) / 1e6
    _copy(event, "input_tokens", attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
    _copy(event, "output_tokens", attrs, "gen_ai.usage.output_tokens",
          "gen_ai.usage.completion_tokens")
    _copy(event, "cost", attrs, "tunepilot.cost")
    _copy(event, "feedback", attrs, "tunepilot.feedback")
    _copy(event, "key", attrs, "tunepilot.key")
    if span.status_code == _STATUS_ERROR or "error.type" in attrs:
        event["error"] = str(attrs.get("error.type") or span.status_message or "error")[:200]
    scores = [ev[_SCORE] for name, ev in span.events if name == _EVALUATION and _SCORE in ev]
    if _SCORE in attrs:
        scores.append(attrs[_SCORE])
    if scores:
        numbers = [s for s in scores if isinstance(s, (int, float)) and not isinstance(s, bool)]
        if len(numbers) != len(scores) or not all(
            math.isfinite(s) and 0.0 <= s <= 1.0 for s in numbers
        ):
            return Rejection(0, event_id, "bad_quality",
                             f"evaluation scores {scores!r} must be numbers in [0, 1]: "
                             "normalise the evaluator's scale before reporting")
        event["quality"] = sum(numbers) / len(numbers)
    else:
        _copy(event, "quality", attrs, "tunepilot.quality")
    attributes: dict[str, AttributeValue] = {k: attrs[k] for k in _PASSED_THROUGH if k in attrs}
    attributes.update({k[len(_ATTR_PREFIX):]: v for k, v in attrs.items()
                       if k.startswith(_ATTR_PREFIX) and len(k) > len(_ATTR_PREFIX)})
    # An evaluation carried by the span itself (not by a span event of the call) reports
    # on another span: the call it evaluates, its parent.
    is_late_evaluation = _SCORE in attrs or "gen_ai.evaluation.name" in attrs
    if is_late_evaluation or "tunepilot.feedback_for" in attrs:
        target = attrs.get("tunepilot.feedback_for") or (
            span.trace_id + span.parent_span_id if span.parent_span_id else None)
        if target is None:
            return Rejection(0, event_id, "missing_feedback_for",
                             "an evaluation span needs a parent span or 'tunepilot.feedback_for'")
        attributes["feedback_for"] = str(target)
        event.pop("latency_ms", None)
    if attributes:
        event["attributes"] = attributes
    return event


def _copy(event: dict[str, Any], name: str, attrs: Mapping[str, AttributeValue], *keys: str) -> None:
    for key in keys:
        if key in attrs:
            event[name] = attrs[key]
            return


# -- OTLP/JSON ---------------------------------------------------------------------------


def _json_get(data: Mapping[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    return data.get(camel, data.get(snake, default))


def _json_value(value: Any) -> AttributeValue | None:
    if not isinstance(value, dict):
        return None
    if "stringValue" in value or "string_value" in value:
        text = _json_get(value, "stringValue", "string_value")
        return text if isinstance(text, str) else None
    if "boolValue" in value or "bool_value" in value:
        flag = _json_get(value, "boolValue", "bool_value")
        return flag if isinstance(flag, bool) else None
    if "intValue" in value or "int_value" in value:
        # int64 travels as a decimal string in OTLP/JSON.
        number = _json_get(value, "intValue", "int_value")
        try:
            return int(number) if not isinstance(number, bool) else None
        except (TypeError, ValueError):
            return None
    if "doubleValue" in value or "double_value" in value:
        real = _json_get(value, "doubleValue", "double_value")
        if isinstance(real, str) and real in ("NaN", "Infinity", "-Infinity"):
            return float(real.replace("Infinity", "inf"))
        return float(real) if isinstance(real, (int, float)) and not isinstance(real, bool) else None
    return None


def _json_attributes(items: Any) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    if not isinstance(items, list):
        return out
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            value = _json_value(item.get("value"))
            if value is not None:
                out[item["key"]] = value
    return out


def _json_int(value: Any) -> int:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else 0
    except (TypeError, ValueError):
        raise ValueError(f"time {value!r} is not an integer number of nanoseconds") from None


def _json_spans(data: Mapping[str, Any]) -> Iterator[_Span]:
    for resource_spans in _json_list(_json_get(data, "resourceSpans", "resource_spans", [])):
        resource = _json_attributes((resource_spans.get("resource") or {}).get("attributes"))
        for scope_spans in _json_list(_json_get(resource_spans, "scopeSpans", "scope_spans", [])):
            for span in _json_list(scope_spans.get("spans", [])):
                status = span.get("status") or {}
                code = status.get("code", 0) if isinstance(status, dict) else 0
                if isinstance(code, str):
                    code = _STATUS_ERROR if code.endswith("ERROR") else 0
                yield _Span(
                    trace_id=str(_json_get(span, "traceId", "trace_id", "")).lower(),
                    span_id=str(_json_get(span, "spanId", "span_id", "")).lower(),
                    parent_span_id=str(_json_get(span, "parentSpanId", "parent_span_id", "")).lower(),
                    start_ns=_json_int(_json_get(span, "startTimeUnixNano", "start_time_unix_nano")),
                    end_ns=_json_int(_json_get(span, "endTimeUnixNano", "end_time_unix_nano")),
                    attributes=_json_attributes(span.get("attributes")),
                    resource=resource,
                    events=[(str(ev.get("name", "")), _json_attributes(ev.get("attributes")))
                            for ev in _json_list(span.get("events", []))],
                    status_code=int(code) if isinstance(code, int) else 0,
                    status_message=str(status.get("message", "")) if isinstance(status, dict) else "",
                )


def _json_list(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError("malformed OTLP/JSON: expected a list of objects "
                         "(resourceSpans, scopeSpans, spans, events)")
    return value


# -- OTLP/protobuf -----------------------------------------------------------------------


def _count_protobuf_spans(body: bytes, limit: int) -> None:
    """Refuse a body of more than ``limit`` spans from its wire format, before parsing it.

    Walks only the three levels that hold spans (request -> resource_spans (1) ->
    scope_spans (2) -> spans (2)), jumping over every other field; the walk itself is
    bounded (a legitimate export has few fields besides its spans). Malformed bytes are
    left for the parser to report.
    """
    budget = 4 * limit + 1000
    spans = 0

    def fields(start: int, end: int) -> Iterator[tuple[int, int, int]]:
        nonlocal budget
        at = start
        while at < end:
            budget -= 1
            if budget < 0:
                raise PayloadTooLarge(f"the OTLP body has too many fields for {limit:,} "
                                      "spans; send fewer per request")
            key, at = _varint(body, at)
            number, wire = key >> 3, key & 7
            if wire == 2:
                size, at = _varint(body, at)
                yield number, at, at + size
                at += size
            elif wire == 0:
                _, at = _varint(body, at)
            elif wire == 1:
                at += 8
            elif wire == 5:
                at += 4
            else:
                return

    try:
        for number, start, end in fields(0, len(body)):
            if number != 1:
                continue
            for number2, start2, end2 in fields(start, end):
                if number2 != 2:
                    continue
                for number3, _, _ in fields(start2, end2):
                    if number3 == 2:
                        spans += 1
                        if spans > limit:
                            raise PayloadTooLarge(f"the body holds more than {limit:,} "
                                                  "spans; send fewer per request")
    except IndexError:
        return


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")


def _protobuf_spans(body: bytes) -> Iterator[_Span]:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise ValueError(f"the body is not an OTLP ExportTraceServiceRequest: {exc}") from None
    for resource_spans in request.resource_spans:
        resource = _pb_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield _Span(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    attributes=_pb_attributes(span.attributes),
                    resource=resource,
                    events=[(ev.name, _pb_attributes(ev.attributes)) for ev in span.events],
                    status_code=int(span.status.code),
                    status_message=span.status.message,
                )


def _pb_attributes(items: Any) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for item in items:
        kind = item.value.WhichOneof("value")
        if kind in ("string_value", "bool_value", "int_value", "double_value"):
            out[item.key] = getattr(item.value, kind)
    return out


def protobuf_response(result: OtlpResult | None) -> bytes:
    """An ``ExportTraceServiceResponse``, with ``partial_success`` when spans were refused."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTracePartialSuccess,
        ExportTraceServiceResponse,
    )

    response = ExportTraceServiceResponse()
    if result is not None and result.rejected:
        response.partial_success.CopyFrom(ExportTracePartialSuccess(
            rejected_spans=result.rejected, error_message=result.error_message()))
    data: bytes = response.SerializeToString()
    return data


def json_response(result: OtlpResult | None) -> dict[str, Any]:
    """The OTLP/JSON ``ExportTraceServiceResponse``."""
    if result is None or not result.rejected:
        return {}
    return {"partialSuccess": {"rejectedSpans": str(result.rejected),
                               "errorMessage": result.error_message()}}
