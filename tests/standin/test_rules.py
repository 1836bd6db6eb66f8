"""The documented default figures, scenario validation and schema-shaped structured output."""

from __future__ import annotations

import json
from typing import Literal

import pydantic
import pytest

from spanledger.standin import Scenario, ScenarioError, estimate_tokens, prompt_tokens
from spanledger.standin.structured import example_json, example_value
from spanledger.standin.tokens import embedding_tokens, reply_text, split


@pytest.mark.parametrize(
    ("text", "expected"), [("", 1), ("a", 1), ("abcd", 1), ("abcde", 2), ("é" * 8, 2)]
)
def test_estimate_tokens(text: str, expected: int) -> None:
    assert estimate_tokens(text) == expected


def test_prompt_tokens_read_every_provider_shape() -> None:
    chat = {"messages": [{"role": "user", "content": "abcd"}, {"content": [{"text": "efgh"}]}]}
    anthropic = {"system": [{"type": "text", "text": "abcd"}], "messages": [{"content": "e"}]}
    responses = {"instructions": "abcd", "input": "efghi"}
    tools_only = {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}

    assert [prompt_tokens(b) for b in (chat, anthropic, responses, tools_only)] == [2, 2, 3, 1]
    assert embedding_tokens(["abcd", "abcde", [1, 2, 3]]) == 1 + 2 + 3


def test_split_gives_non_empty_pieces_and_reply_text_grows_for_chunks() -> None:
    assert split("abcdefg", 3) == ["ab", "cd", "efg"]
    assert split("ab", 5) == ["a", "b"]
    assert len(reply_text(None, 100)) >= 100
    assert reply_text("x", 100) == "x"


def test_scenario_round_trips_through_the_header() -> None:
    scenario = Scenario(usage={"input_tokens": 3}, reasoning="why", cost=0.5, repeat=2)
    header = scenario.to_header()

    assert json.loads(header["x-standin-scenario"]) == {
        "usage": {"input_tokens": 3},
        "reasoning": "why",
        "cost": 0.5,
        "repeat": 2,
    }
    assert Scenario.from_json(header["x-standin-scenario"]) == scenario


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"chunks": 0}, "chunks must be an integer >= 1"),
        ({"error": 302}, "error must be an HTTP status between 400 and 599"),
        ({"error": True}, "error must be an HTTP status"),
        ({"reasoning": -1}, "reasoning must be a token count"),
        ({"usage": [1]}, "usage must be an object"),
        ({"response_headers": {"x": 1}}, "response_headers must map header names"),
        ({"delay": 120}, "delay must be a number of seconds between 0 and 60"),
        ({"tool_calls": [{"arguments": {}}]}, "tool_calls must be a list"),
        ({"repeat": 0}, "repeat must be an integer >= 1"),
        ({"drop_after": "3"}, "drop_after must be an integer >= 0"),
    ],
)
def test_scenario_rejects_bad_fields(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_dict(fields)


def test_scenario_rejects_non_objects_and_unknown_fields() -> None:
    with pytest.raises(ScenarioError, match="must be a JSON object, got list"):
        Scenario.from_json("[]")
    with pytest.raises(ScenarioError, match=r"unknown scenario field\(s\) colour"):
        Scenario.from_dict({"colour": "red"})


class Address(pydantic.BaseModel):
    city: str
    zip_code: str | None


class Person(pydantic.BaseModel):
    name: str = pydantic.Field(min_length=10)
    age: int = pydantic.Field(ge=18, le=99)
    height: float = pydantic.Field(gt=2.0)
    role: Literal["admin", "user"]
    home: Address
    previous: list[Address]
    nickname: str | None = None


def test_example_value_validates_against_pydantic_schemas() -> None:
    schema = Person.model_json_schema()
    person = Person.model_validate_json(example_json(schema))

    assert person.age == 18
    assert person.height == 3.0
    assert person.role == "admin"
    assert len(person.name) == 10
    assert person.home == Address(city="example", zip_code="example")
    assert person.previous == [person.home]


def test_example_value_edge_shapes() -> None:
    assert example_value({"type": ["null", "integer"], "maximum": -5}) == -5
    assert example_value({"const": 7}) == 7
    assert example_value({"type": "array", "items": {"type": "boolean"}, "minItems": 2}) == [
        True,
        True,
    ]
    assert example_value({"$ref": "#/$defs/missing"}) == "example"
    recursive = {
        "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
        "$ref": "#/$defs/node",
    }
    value = example_value(recursive)
    depth = 0
    while isinstance(value, dict):
        value, depth = value["next"], depth + 1
    assert 1 < depth < 20
