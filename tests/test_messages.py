"""The message contract: topics and the one codec, including every way a payload can be bad."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shopfloor.messages import (
    MAX_PAYLOAD_BYTES,
    AssetPath,
    Breakdown,
    MessageError,
    MessageKind,
    Quality,
    Reading,
    TopicError,
    decode_command,
    decode_readings,
    decode_status,
    encode_command,
    encode_readings,
    parse_topic,
    subscription,
)

PATH = AssetPath("polimer", "brest", "moulding", "line-1", "cnc-01")
TS = datetime(2026, 11, 2, 8, 0, 0, 250_000, tzinfo=UTC)


def test_topic_round_trip() -> None:
    assert PATH.topic() == "polimer/brest/moulding/line-1/cnc-01/data"
    assert parse_topic(PATH.topic()) == (PATH, MessageKind.DATA)
    assert subscription("polimer") == "polimer/+/+/+/+/data"


@pytest.mark.parametrize(
    "topic",
    ["polimer/brest/moulding/line-1/data", "a/b/c/d/e/f/data", "a/b//d/e/data", "a/b/c/d/e/nope"],
)
def test_topics_outside_the_namespace_are_refused(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_topic(topic)


def test_codec_round_trip_keeps_types_time_quality_and_unit() -> None:
    readings = [
        Reading(signal="spindle_load", value=62.4, ts=TS, unit="%"),
        Reading(signal="part_count", value=1234, ts=TS, unit="pcs"),
        Reading(signal="state", value="running", ts=TS, quality=Quality.UNCERTAIN),
        Reading(signal="door_open", value=True, ts=TS),
    ]
    decoded = decode_readings(encode_readings(readings))
    assert decoded == readings
    assert [type(r.value) for r in decoded] == [float, int, str, bool]


def test_documented_example_decodes() -> None:
    payload = (
        b'{"v": 1, "readings": [{"signal": "spindle_load", "value": 62.4, '
        b'"ts": "2026-11-02T08:00:00.250000Z", "quality": "good", "unit": "%"}]}'
    )
    [reading] = decode_readings(payload)
    assert reading == Reading(signal="spindle_load", value=62.4, ts=TS, unit="%")


def test_timestamps_in_other_zones_are_stored_as_utc() -> None:
    minsk = timezone(timedelta(hours=3))
    stamps = ["2026-11-02T08:00:00.25Z", "2026-11-02T11:00:00.25+03:00"]
    body = {"v": 1, "readings": [{"signal": "x", "value": 1, "ts": ts} for ts in stamps]}
    readings = decode_readings(json.dumps(body).encode())
    assert [r.ts for r in readings] == [TS, TS.astimezone(minsk)]
    assert all(r.ts.utcoffset() == timedelta(0) for r in readings)
    assert readings[1].ts.tzinfo == UTC


def test_a_timestamp_is_refused_in_a_message_of_good_ones_by_its_index() -> None:
    good = {"signal": "x", "value": 1, "ts": "2026-11-02T08:00:00Z"}
    for bad, reason in (
        (
            1_700_000_000,
            "readings.1.ts: Value error, a timestamp is ISO 8601 text with a zone, not a number",
        ),
        (
            "9999-12-31T23:59:59-05:00",
            "readings.1.ts: Value error, 9999-12-31T23:59:59-05:00 "
            "is outside the date range once put in UTC",
        ),
    ):
        body = {"v": 1, "readings": [good, {**good, "ts": bad}, good]}
        with pytest.raises(MessageError, match=f"^{reason}$"):
            decode_readings(json.dumps(body).encode())


def payload(**reading: object) -> bytes:
    base: dict[str, object] = {"signal": "x", "value": 1.0, "ts": "2026-11-02T08:00:00Z"}
    base.update(reading)
    return json.dumps({"v": 1, "readings": [base]}).encode()


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "Invalid JSON"),
        (b'{"v": 2, "readings": []}', "v: Input should be 1"),
        (b'{"v": 1, "readings": []}', "readings: List should have at least 1 item"),
        (payload(value=[1, 2]), "readings.0.value"),
        (payload(value=None), "readings.0.value"),
        (b'{"v":1,"readings":[{"signal":"x","value":NaN,"ts":"2026-11-02T08:00:00Z"}]}', "value"),
        (payload(ts="2026-11-02T08:00:00"), "readings.0.ts: Input should have timezone info"),
        (payload(ts="yesterday"), "readings.0.ts"),
        (payload(quality="excellent"), "readings.0.quality"),
        (payload(signal=""), "readings.0.signal"),
        (payload(colour="red"), "readings.0.colour: Extra inputs are not permitted"),
        (b"x" * (MAX_PAYLOAD_BYTES + 1), "exceeds"),
    ],
)
def test_bad_payloads_name_the_field(raw: bytes, fragment: str) -> None:
    with pytest.raises(MessageError) as caught:
        decode_readings(raw)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_encoding_refuses_non_finite_values() -> None:
    with pytest.raises(ValueError):
        Reading(signal="x", value=float("inf"), ts=TS)


def test_a_breakdown_command_round_trips_and_a_bad_reason_is_named() -> None:
    wire = b'{"v":1,"action":{"command":"breakdown","asset":"imm-01","reason":"heater_fault"}}'
    assert decode_command(wire) == Breakdown(asset="imm-01", reason="heater_fault", duration_s=900)
    command = Breakdown(asset="cnc-01", reason="chip_jam", duration_s=60)
    assert decode_command(encode_command(command)) == command
    bad = b'{"v":1,"action":{"command":"breakdown","asset":"imm-01","reason":"Heater fault!"}}'
    with pytest.raises(MessageError, match=r"^action\.breakdown\.reason: String should match"):
        decode_command(bad)


def test_a_status_without_the_newer_fields_still_decodes() -> None:
    """A status of a simulator from before waiting faults and breakdown reasons: version 1."""
    old = b'{"v":1,"scenario":"s","available":[],"speed":1.0,"started":"2026-11-22T20:16:12Z"}'
    status = decode_status(old)
    assert (status.pending, status.stop_reasons) == ([], {})
