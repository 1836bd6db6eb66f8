"""OTLP attribute and id helpers."""

from __future__ import annotations

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanledger.processor.otlp.attributes import (
    attributes_to_dict,
    from_any_value,
    get_attribute,
    hex_id,
    id_from_hex,
    set_attribute,
    set_attributes,
    to_any_value,
)


@pytest.mark.parametrize(
    "value",
    [
        "text",
        "",
        True,
        False,
        0,
        -(2**63),
        2**63 - 1,
        0.1,
        b"\x00\xff",
        [1, "a", [2.5]],
        {"k": {"n": 1}},
    ],
)
def test_values_survive_a_round_trip_through_any_value(value):
    holder = AnyValue()
    to_any_value(value, holder)
    assert from_any_value(AnyValue.FromString(holder.SerializeToString())) == value


def test_bool_is_not_stored_as_int():
    holder = AnyValue()
    to_any_value(True, holder)
    assert holder.WhichOneof("value") == "bool_value"


def test_unset_any_value_reads_as_none():
    assert from_any_value(AnyValue()) is None


def test_values_that_do_not_fit_are_refused_clearly():
    with pytest.raises(ValueError, match="does not fit an OTLP int64"):
        to_any_value(2**63, AnyValue())
    with pytest.raises(TypeError, match="cannot store object"):
        to_any_value(object(), AnyValue())


def test_set_attributes_replaces_present_keys_and_appends_new_ones():
    span = Span()
    span.attributes.add(key="keep").value.string_value = "k"
    span.attributes.add(key="cost").value.string_value = "stale"
    set_attributes(span, {"cost": 0.5, "status": "priced"})
    set_attribute(span, "status", "unpriced")
    assert [kv.key for kv in span.attributes] == ["keep", "cost", "status"]
    assert attributes_to_dict(span.attributes) == {"keep": "k", "cost": 0.5, "status": "unpriced"}
    assert get_attribute(span.attributes, "cost") == 0.5
    assert get_attribute(span.attributes, "absent") is None


def test_attributes_to_dict_keeps_the_last_of_repeated_keys():
    attributes = [
        KeyValue(key="a", value=AnyValue(int_value=1)),
        KeyValue(key="a", value=AnyValue(int_value=2)),
    ]
    assert attributes_to_dict(attributes) == {"a": 2}


def test_ids_as_hex():
    raw = bytes(range(16))
    assert hex_id(raw) == "000102030405060708090a0b0c0d0e0f"
    assert id_from_hex("000102030405060708090A0B0C0D0E0F", 16) == raw
    with pytest.raises(ValueError, match="expected 16 hex digits"):
        id_from_hex("0001", 8)
