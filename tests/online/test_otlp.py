"""OTLP/HTTP traces in JSON and protobuf become events through the GenAI conventions."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tunepilot.online import Event
from tunepilot.online._collector import Collector
from tunepilot.online._otlp import decode_traces, export_traces
from tunepilot.testing import RecordingSink

START_NS = 1795329000_000_000_000
TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
SPAN = bytes.fromhex("b7ad6b7169203331")
CHILD = bytes.fromhex("00f067aa0ba902b7")


def _value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=value)


def _attrs(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in values.items()]


def protobuf_request(*spans: Span, resource: dict[str, Any] | None = None) -> bytes:
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=_attrs(resource or {"service.name": "support-bot"})),
        scope_spans=[ScopeSpans(spans=list(spans))],
    )])
    return request.SerializeToString()


def llm_span(span_id: bytes = SPAN, **attributes: Any) -> Span:
    base = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 420, "gen_ai.usage.output_tokens": 96,
            "tunepilot.variant": "mini", "tunepilot.cost": 0.0012}
    return Span(trace_id=TRACE, span_id=span_id, name="chat gpt-4o-mini",
                start_time_unix_nano=START_NS, end_time_unix_nano=START_NS + 812_500_000,
                attributes=_attrs({**base, **attributes}))


def export(body: bytes, content_type: str = "application/x-protobuf",
           encoding: str = "") -> tuple[Any, RecordingSink]:
    sink = RecordingSink(apps=["support-bot"], variants={"big": "gpt-4o", "mini": "gpt-4o-mini"})
    collector = Collector(sink, clock=lambda: START_NS / 1e9)
    spans = decode_traces(body, content_type=content_type, content_encoding=encoding)
    return export_traces(collector, spans), sink


def test_a_protobuf_genai_span_becomes_an_event() -> None:
    span = llm_span(**{"tunepilot.key": "user-7", "tunepilot.attr.category": "billing"})
    span.events.add(name="gen_ai.evaluation.result", time_unix_nano=START_NS,
                    attributes=_attrs({"gen_ai.evaluation.name": "Relevance",
                                       "gen_ai.evaluation.score.value": 0.8}))
    span.events.add(name="gen_ai.evaluation.result", time_unix_nano=START_NS,
                    attributes=_attrs({"gen_ai.evaluation.name": "Correctness",
                                       "gen_ai.evaluation.score.value": 1.0}))
    result, sink = export(protobuf_request(span))
    assert (result.batch.accepted, result.rejected, result.skipped) == (1, 0, 0)
    (event,) = sink.events
    assert event == Event(
        app="support-bot", variant="mini", event_id=TRACE.hex() + SPAN.hex(),
        timestamp=(START_NS + 812_500_000) / 1e9, latency_ms=812.5, input_tokens=420,
        output_tokens=96, cost=0.0012, quality=0.9, key="user-7",
        attributes={"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
                    "category": "billing"},
    )


def test_the_older_token_attribute_names_are_read() -> None:
    span = llm_span()
    del span.attributes[:]
    span.attributes.extend(_attrs({"gen_ai.usage.prompt_tokens": 11,
                                   "gen_ai.usage.completion_tokens": 7,
                                   "tunepilot.variant": "mini", "tunepilot.app": "support-bot"}))
    _, sink = export(protobuf_request(span, resource={}))
    assert (sink.events[0].input_tokens, sink.events[0].output_tokens) == (11, 7)


def test_an_error_status_becomes_the_error_type() -> None:
    failed = llm_span(**{"error.type": "RateLimitError"})
    failed.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="429"))
    plain = llm_span(span_id=CHILD)
    plain.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="timeout"))
    _, sink = export(protobuf_request(failed, plain))
    assert [e.error for e in sink.events] == ["RateLimitError", "timeout"]


def test_an_evaluation_span_is_late_feedback_for_its_parent() -> None:
    evaluation = Span(trace_id=TRACE, span_id=CHILD, parent_span_id=SPAN,
                      name="gen_ai.evaluation.result", start_time_unix_nano=START_NS + 10**10,
                      end_time_unix_nano=START_NS + 10**10,
                      attributes=_attrs({"gen_ai.evaluation.name": "Helpfulness",
                                         "gen_ai.evaluation.score.value": 0.25,
                                         "tunepilot.variant": "mini"}))
    _, sink = export(protobuf_request(evaluation))
    (event,) = sink.events
    assert event.quality == 0.25 and event.latency_ms is None
    assert event.attributes["feedback_for"] == TRACE.hex() + SPAN.hex()


def test_spans_that_are_not_llm_calls_are_skipped_and_bad_ones_refused() -> None:
    http = Span(trace_id=TRACE, span_id=CHILD, name="GET /", start_time_unix_nano=START_NS,
                end_time_unix_nano=START_NS + 1000, attributes=_attrs({"http.method": "GET"}))
    no_variant = llm_span(span_id=bytes(7) + b"\x01")
    del no_variant.attributes[-2:]
    bad_score = llm_span(span_id=bytes(7) + b"\x02")
    bad_score.events.add(name="gen_ai.evaluation.result",
                         attributes=_attrs({"gen_ai.evaluation.score.value": 4.0}))
    result, _ = export(protobuf_request(http, no_variant, bad_score, llm_span()))
    assert (result.spans, result.skipped, result.batch.accepted) == (4, 1, 1)
    assert sorted(r.reason for r in result.batch.rejected) == ["bad_quality", "missing_variant"]
    assert "tunepilot.variant" in result.error_message()


def test_otlp_json_with_hex_ids_and_string_int64s() -> None:
    body = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "support-bot"}}]},
        "scopeSpans": [{"scope": {"name": "openai"}, "spans": [{
            "traceId": TRACE.hex().upper(), "spanId": SPAN.hex(), "name": "chat",
            "startTimeUnixNano": str(START_NS), "endTimeUnixNano": str(START_NS + 2_000_000),
            "status": {"code": 2},
            "attributes": [
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 3}},
                {"key": "tunepilot.variant", "value": {"stringValue": "mini"}},
                {"key": "tunepilot.cost", "value": {"doubleValue": 0.5}},
                {"key": "tunepilot.feedback", "value": {"intValue": "-1"}},
            ],
        }]}],
    }]}
    import orjson

    result, sink = export(gzip.compress(orjson.dumps(body)), "application/json", "gzip")
    assert result.batch.accepted == 1
    (event,) = sink.events
    assert event.event_id == TRACE.hex() + SPAN.hex()
    assert (event.input_tokens, event.output_tokens, event.cost, event.feedback, event.error) == (
        12, 3, 0.5, -1, "error")
    assert event.latency_ms == pytest.approx(2.0)


@pytest.mark.parametrize(("body", "content_type", "message"), [
    (b"\xff\xff\xff", "application/x-protobuf", "not an OTLP ExportTraceServiceRequest"),
    (b"{", "application/json", "not valid JSON"),
    (b'{"resourceSpans": {"a": 1}}', "application/json", "expected a list of objects"),
    (b"{}", "text/plain", "send application/json or application/x-protobuf"),
])
def test_undecodable_bodies_say_why(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_traces(body, content_type=content_type)
