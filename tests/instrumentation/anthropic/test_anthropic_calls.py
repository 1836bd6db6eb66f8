"""Every way the real anthropic SDK makes a Messages call yields one span with exact usage."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import anthropic
import pydantic
from anthropic.lib.streaming import AsyncMessageStream, MessageStream
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from spanledger import semconv
from spanledger.standin import Scenario, StandIn

MODEL = "claude-sonnet-4-6"
PROMPT = [{"role": "user", "content": "Hello"}]
# Input: 10 uncached + 2000 cache reads + (100 five-minute + 200 one-hour) cache writes.
# Output: "abcdefgh" is 2 tokens, plus 5 thinking tokens.
SCENARIO = Scenario(
    text="abcdefgh",
    reasoning=5,
    chunks=3,
    usage={
        "input_tokens": 10,
        "cache_read_input_tokens": 2000,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
    },
)
EXPECTED_USAGE = {
    semconv.GEN_AI_USAGE_INPUT_TOKENS: 2310,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 7,
    semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 2000,
    semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 300,
    semconv.USAGE_CACHE_CREATION_1H_INPUT_TOKENS: 200,
}


def call_kwargs(scenario: Scenario = SCENARIO) -> dict:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "messages": PROMPT,
        "extra_headers": scenario.to_header(),
    }


def assert_counted(span: ReadableSpan, *, stream: bool, completed: bool | None = None) -> None:
    attributes = dict(span.attributes or {})
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert attributes[semconv.GEN_AI_REQUEST_MODEL] == MODEL
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is stream
    assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == MODEL
    assert str(attributes[semconv.GEN_AI_RESPONSE_ID]).startswith("msg_standin")
    assert tuple(attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("end_turn",)
    assert attributes["gen_ai.request.max_tokens"] == 64
    for name, value in EXPECTED_USAGE.items():
        assert attributes[name] == value, name
    assert attributes.get(semconv.STREAM_COMPLETED) == completed
    assert span.status.status_code is not StatusCode.ERROR


def test_create(client: anthropic.Anthropic, only_span) -> None:
    message = client.messages.create(**call_kwargs())
    assert isinstance(message, anthropic.types.Message)
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert_counted(only_span(), stream=False)


def test_create_stream_true(client: anthropic.Anthropic, only_span) -> None:
    stream = client.messages.create(stream=True, **call_kwargs())
    assert type(stream) is anthropic.Stream
    kinds = [event.type for event in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert_counted(only_span(), stream=True, completed=True)


def test_stream_helper(client: anthropic.Anthropic, only_span) -> None:
    with client.messages.stream(**call_kwargs()) as stream:
        assert isinstance(stream, MessageStream)
        assert stream.get_final_text() == "abcdefgh"
    assert_counted(only_span(), stream=True, completed=True)


class City(pydantic.BaseModel):
    name: str


def test_parse_structured_output(client: anthropic.Anthropic, only_span) -> None:
    scenario = Scenario(
        text='{"name":"Paris"}',
        usage={"input_tokens": 10, "cache_read_input_tokens": 2000},
    )
    parsed = client.messages.parse(output_format=City, **call_kwargs(scenario))
    assert parsed.parsed_output == City(name="Paris")
    attributes = dict(only_span().attributes or {})
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2010
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
    assert attributes[semconv.USAGE_CACHE_CREATION_1H_INPUT_TOKENS] == 0


def test_beta_create_and_stream(client: anthropic.Anthropic, only_span) -> None:
    message = client.beta.messages.create(**call_kwargs())
    assert isinstance(message, anthropic.types.beta.BetaMessage)
    assert_counted(only_span(), stream=False)
    with client.beta.messages.stream(**call_kwargs()) as stream:
        for _ in stream:
            pass
    assert_counted(only_span(), stream=True, completed=True)


def test_with_raw_response(client: anthropic.Anthropic, only_span) -> None:
    raw = client.messages.with_raw_response.create(**call_kwargs())
    assert raw.parse().usage.cache_read_input_tokens == 2000
    assert_counted(only_span(), stream=False)
    raw = client.messages.with_raw_response.create(stream=True, **call_kwargs())
    assert [event.type for event in raw.parse()][-1] == "message_stop"
    assert_counted(only_span(), stream=True, completed=True)


def test_with_streaming_response(client: anthropic.Anthropic, only_span, span_exporter) -> None:
    with client.messages.with_streaming_response.create(**call_kwargs()) as response:
        assert span_exporter.get_finished_spans() == ()
        assert response.parse().usage.input_tokens == 10
    assert_counted(only_span(), stream=False)
    with client.messages.with_streaming_response.create(stream=True, **call_kwargs()) as response:
        lines = list(response.iter_lines())
    assert "event: message_stop" in lines
    assert_counted(only_span(), stream=True, completed=True)


def test_async_paths(async_client_for, only_span) -> None:
    async def main() -> None:
        async with async_client_for() as client:
            message = await client.messages.create(**call_kwargs())
            assert isinstance(message, anthropic.types.Message)
            assert_counted(only_span(), stream=False)

            stream = await client.messages.create(stream=True, **call_kwargs())
            assert isinstance(stream, anthropic.AsyncStream)
            async for _ in stream:
                pass
            assert_counted(only_span(), stream=True, completed=True)

            async with client.messages.stream(**call_kwargs()) as helper:
                assert isinstance(helper, AsyncMessageStream)
                assert await helper.get_final_text() == "abcdefgh"
            assert_counted(only_span(), stream=True, completed=True)

            beta = await client.beta.messages.with_raw_response.create(**call_kwargs())
            assert (await beta.parse()).usage.output_tokens == 7
            assert_counted(only_span(), stream=False)

    asyncio.run(main())


def test_thinking_block_is_carried_through(client: anthropic.Anthropic, only_span) -> None:
    scenario = Scenario(text="ok", reasoning="Let me weigh this carefully.", chunks=1)
    with client.messages.stream(**call_kwargs(scenario)) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "thinking"
    attributes = dict(only_span().attributes or {})
    # 1 token of text plus 7 of thinking (28 characters).
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 8
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2


def test_processor_reads_the_span_as_the_call(client: anthropic.Anthropic, only_span) -> None:
    from spanledger.processor.usage.extract import extract_usage

    with client.messages.stream(**call_kwargs()) as stream:
        stream.until_done()
    span = only_span()
    usage = extract_usage(dict(span.attributes or {}), span.name)
    assert usage is not None and usage.problems == []
    assert (usage.operation, usage.provider, usage.model) == ("chat", "anthropic", MODEL)
    assert (usage.input_tokens, usage.output_tokens) == (2310, 7)
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (2000, 100)
    assert usage.cache_write_1h_tokens == 200


def test_concurrent_calls_each_get_their_own_span(
    client: anthropic.Anthropic, async_client_for, span_exporter
) -> None:
    def one(index: int) -> str:
        scenario = Scenario(text="x" * (4 * index), usage={"input_tokens": index})
        if index % 2:
            return client.messages.create(**call_kwargs(scenario)).id
        with client.messages.stream(**call_kwargs(scenario)) as stream:
            return stream.get_final_message().id

    async def many_async() -> list[str]:
        async with async_client_for() as async_client:

            async def one_async(index: int) -> str:
                scenario = Scenario(text="x" * (4 * index), usage={"input_tokens": index})
                async with async_client.messages.stream(**call_kwargs(scenario)) as stream:
                    return (await stream.get_final_message()).id

            return list(await asyncio.gather(*(one_async(i) for i in range(11, 17))))

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(one, range(1, 9)))
    ids += asyncio.run(many_async())
    spans = span_exporter.get_finished_spans()
    assert len(spans) == len(ids) == 14
    by_id = {span.attributes[semconv.GEN_AI_RESPONSE_ID]: span for span in spans}
    assert sorted(by_id) == sorted(ids)
    for index, message_id in zip([*range(1, 9), *range(11, 17)], ids, strict=True):
        attributes = by_id[message_id].attributes
        assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == index
        assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == index


@anthropic.beta_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def test_tool_runner_keeps_the_sdk_agent_span_around_our_calls(
    client: anthropic.Anthropic, llm: StandIn, span_exporter
) -> None:
    llm.push(
        Scenario(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]),
        Scenario(text="It is sunny", usage={"input_tokens": 30}),
    )
    runner = client.beta.messages.tool_runner(
        model=MODEL, max_tokens=64, messages=PROMPT, tools=[get_weather]
    )
    assert runner.until_done().content[-1].text == "It is sunny"
    spans = span_exporter.get_finished_spans()
    operations = [(span.name, span.attributes.get(semconv.GEN_AI_OPERATION_NAME)) for span in spans]
    assert sorted(operations) == sorted(
        [
            (f"chat {MODEL}", "chat"),
            ("anthropic.custom_tool_use get_weather", "execute_tool"),
            (f"chat {MODEL}", "chat"),
            ("anthropic.messages.tool_runner", "invoke_agent"),
        ]
    )
    (agent,) = [span for span in spans if span.name == "anthropic.messages.tool_runner"]
    chats = [span for span in spans if span.name == f"chat {MODEL}"]
    assert all(chat.parent.span_id == agent.context.span_id for chat in chats)
    assert [chat.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] for chat in chats] == [2, 30]


def test_compaction_iterations_are_kept_for_the_processor(
    client: anthropic.Anthropic, only_span
) -> None:
    from spanledger.processor.usage.extract import extract_usage

    iterations = [
        {
            "type": "compaction",
            "input_tokens": 900,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 0,
            "output_tokens": 50,
        },
        {
            "type": "message",
            "input_tokens": 10,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "output_tokens": 2,
        },
    ]
    scenario = Scenario(text="abcdefgh", usage={"input_tokens": 10, "iterations": iterations})
    message = client.beta.messages.create(**call_kwargs(scenario))
    assert message.usage.iterations is not None
    span = only_span()
    attributes = dict(span.attributes or {})
    assert attributes[semconv.ANTHROPIC_USAGE_COMPACTION_INPUT_TOKENS] == 1000
    assert attributes[semconv.ANTHROPIC_USAGE_COMPACTION_OUTPUT_TOKENS] == 50
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 10
    usage = extract_usage(attributes, span.name)
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (1010, 52)
    with client.beta.messages.stream(**call_kwargs(scenario)) as stream:
        stream.until_done()
    attributes = dict(only_span().attributes or {})
    assert attributes[semconv.ANTHROPIC_USAGE_COMPACTION_INPUT_TOKENS] == 1000
    assert attributes[semconv.ANTHROPIC_USAGE_COMPACTION_OUTPUT_TOKENS] == 50
