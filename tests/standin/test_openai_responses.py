"""OpenAI Responses and Embeddings through the real ``openai`` client."""

from __future__ import annotations

import asyncio
import base64
import struct

import openai
import pydantic

from spanledger.standin import DEFAULT_TEXT, Scenario, StandIn, estimate_tokens

MODEL = "o3-mini"
INSTRUCTIONS = "You plan searches."
INPUT = [{"role": "user", "content": [{"type": "input_text", "text": "Find flights."}]}]
PROMPT_TOKENS = estimate_tokens(INSTRUCTIONS + "Find flights.")


class Plan(pydantic.BaseModel):
    steps: list[str]
    budget: int


def test_json_reply_with_cached_and_reasoning_tokens(oai: openai.OpenAI, llm: StandIn) -> None:
    scenario = Scenario(
        reasoning=64, usage={"input_tokens": 3000, "input_tokens_details": {"cached_tokens": 2048}}
    )
    reply = oai.responses.create(
        model=MODEL, instructions=INSTRUCTIONS, input=INPUT, extra_headers=scenario.to_header()
    )

    assert reply.model == MODEL
    assert reply.status == "completed"
    assert reply.output_text == DEFAULT_TEXT
    assert [item.type for item in reply.output] == ["reasoning", "message"]
    usage = reply.usage
    assert usage is not None
    assert usage.input_tokens == 3000
    assert usage.input_tokens_details.cached_tokens == 2048
    assert usage.output_tokens == 9 + 64
    assert usage.output_tokens_details.reasoning_tokens == 64
    assert usage.total_tokens == 3073
    assert llm.requests[0].path == "/v1/responses"


def test_default_input_tokens_count_instructions_and_input(oai: openai.OpenAI) -> None:
    reply = oai.responses.create(model=MODEL, instructions=INSTRUCTIONS, input=INPUT)

    assert reply.usage is not None
    assert reply.usage.input_tokens == PROMPT_TOKENS == 8
    assert [item.type for item in reply.output] == ["message"]


def test_typed_event_stream(oai: openai.OpenAI) -> None:
    stream = oai.responses.create(
        model=MODEL,
        input="Find flights.",
        stream=True,
        extra_headers=Scenario(reasoning=3).to_header(),
    )
    events = list(stream)

    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert types.count("response.output_text.delta") == 4
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == DEFAULT_TEXT
    completed = events[-1].response
    assert completed.usage is not None
    assert completed.usage.output_tokens_details.reasoning_tokens == 3
    assert completed.usage.input_tokens == estimate_tokens("Find flights.")
    assert completed.output_text == DEFAULT_TEXT


def test_stream_helper_final_response(oai: openai.OpenAI) -> None:
    with oai.responses.stream(
        model=MODEL,
        input="Find flights.",
        extra_headers=Scenario(chunks=2, text="abcd").to_header(),
    ) as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()

    assert texts == ["ab", "cd"]
    assert final.output_text == "abcd"
    assert final.usage is not None
    assert final.usage.output_tokens == 1


def test_parse_and_streamed_parse(oai: openai.OpenAI, llm: StandIn) -> None:
    reply = oai.responses.parse(model=MODEL, input="Plan.", text_format=Plan)
    assert reply.output_parsed == Plan(steps=["example"], budget=1)
    assert llm.requests[0].json["text"]["format"]["type"] == "json_schema"

    with oai.responses.stream(model=MODEL, input="Plan.", text_format=Plan) as stream:
        final = stream.get_final_response()
    assert final.output_parsed == Plan(steps=["example"], budget=1)


def test_function_call_output(oai: openai.OpenAI) -> None:
    tools = [
        {
            "type": "function",
            "name": "search",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        }
    ]
    scenario = Scenario(tool_calls=[{"name": "search", "arguments": {"q": "flights"}}])
    reply = oai.responses.create(
        model=MODEL, input="Plan.", tools=tools, extra_headers=scenario.to_header()
    )
    call = reply.output[0]
    assert call.type == "function_call"
    assert (call.name, call.arguments) == ("search", '{"q": "flights"}')

    with oai.responses.stream(
        model=MODEL, input="Plan.", tools=tools, extra_headers=scenario.to_header()
    ) as stream:
        final = stream.get_final_response()
    assert final.output[0].type == "function_call"
    assert final.output[0].arguments == '{"q": "flights"}'


def test_async_stream_helper_and_json(llm: StandIn) -> None:
    async def run() -> tuple[str, str, int]:
        client = openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="test", max_retries=0)
        async with client:
            reply = await client.responses.create(model=MODEL, input="Find flights.")
            async with client.responses.stream(model=MODEL, input="Find flights.") as stream:
                final = await stream.get_final_response()
        assert final.usage is not None
        return reply.output_text, final.output_text, final.usage.total_tokens

    assert asyncio.run(run()) == (DEFAULT_TEXT, DEFAULT_TEXT, estimate_tokens("Find flights.") + 9)


def test_embeddings_float_and_base64_agree(oai: openai.OpenAI, llm: StandIn) -> None:
    inputs = ["first input", "second"]
    floats = oai.embeddings.create(
        model="text-embedding-3-small", input=inputs, encoding_format="float"
    )
    default = oai.embeddings.create(model="text-embedding-3-small", input=inputs, dimensions=8)

    assert llm.requests[1].json["encoding_format"] == "base64"
    assert [d.embedding for d in default.data] == [d.embedding for d in floats.data]
    assert [len(d.embedding) for d in floats.data] == [8, 8]
    assert floats.data[0].embedding != floats.data[1].embedding
    assert floats.usage.prompt_tokens == estimate_tokens("first input") + estimate_tokens("second")
    assert floats.usage.total_tokens == floats.usage.prompt_tokens == 5
    assert floats.model == "text-embedding-3-small"


def test_embeddings_wire_base64_is_little_endian_float32(oai: openai.OpenAI) -> None:
    kwargs = {"model": "text-embedding-3-small", "input": "x", "dimensions": 16}
    encoded = oai.embeddings.create(**kwargs, encoding_format="base64").data[0].embedding
    floats = oai.embeddings.create(**kwargs, encoding_format="float").data[0].embedding

    assert isinstance(encoded, str)
    vector = struct.unpack("<16f", base64.b64decode(encoded))
    assert list(vector) == floats
    assert all(-1 <= v < 1 for v in vector)


def test_embeddings_usage_override_and_cost(oai: openai.OpenAI) -> None:
    scenario = Scenario(usage={"prompt_tokens": 512}, cost=0.00001)
    reply = oai.embeddings.create(
        model="text-embedding-3-small", input=[[1, 2, 3]], extra_headers=scenario.to_header()
    )
    assert (reply.usage.prompt_tokens, reply.usage.total_tokens) == (512, 512)
    assert reply.usage.model_extra == {"cost": 0.00001}
