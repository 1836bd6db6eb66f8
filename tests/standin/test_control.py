"""Scenario queueing, the control endpoints, bad input, timing, concurrency and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2
import openai
import pytest

from spanledger.standin import DEFAULT_TEXT, SCENARIO_HEADER, Scenario, StandIn

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def texts(client: openai.OpenAI, count: int, **kwargs: object) -> list[str | None]:
    return [
        client.chat.completions.create(**CHAT, **kwargs).choices[0].message.content
        for _ in range(count)
    ]


def test_queue_is_first_in_first_out_then_default(oai: openai.OpenAI, llm: StandIn) -> None:
    llm.push(Scenario(text="one"), Scenario(text="two", repeat=2))
    assert llm.queued == 2

    assert texts(oai, 4) == ["one", "two", "two", DEFAULT_TEXT]
    assert [r.scenario.text if r.scenario else None for r in llm.requests] == [
        "one",
        "two",
        "two",
        None,
    ]


def test_header_wins_and_leaves_the_queue_alone(oai: openai.OpenAI, llm: StandIn) -> None:
    llm.push(Scenario(text="queued"))
    header = Scenario(text="header").to_header()

    assert texts(oai, 1, extra_headers=header) == ["header"]
    assert llm.queued == 1
    assert texts(oai, 1) == ["queued"]


def test_clear_forgets_requests_and_queue(oai: openai.OpenAI, llm: StandIn) -> None:
    llm.push(Scenario(text="never"))
    texts(oai, 1)
    llm.push(Scenario(text="never either"))
    llm.clear()

    assert (llm.requests, llm.queued) == ([], 0)
    assert texts(oai, 1) == [DEFAULT_TEXT]


def test_http_control_endpoints(oai: openai.OpenAI, llm: StandIn) -> None:
    with httpx2.Client(base_url=llm.url) as http:
        queued = http.post("/_standin/scenarios", json=[{"text": "a"}, {"text": "b"}])
        assert (queued.status_code, queued.json()) == (200, {"queued": 2})
        assert http.post("/_standin/scenarios", json={"text": "c"}).json() == {"queued": 1}

        assert texts(oai, 3) == ["a", "b", "c"]

        recorded = http.get("/_standin/requests").json()
        assert [r["path"] for r in recorded] == ["/v1/chat/completions"] * 3
        assert [r["scenario"] for r in recorded] == [{"text": "a"}, {"text": "b"}, {"text": "c"}]
        assert recorded[0]["json"] == CHAT
        assert recorded[0]["headers"]["content-type"] == "application/json"

        bad = http.post("/_standin/scenarios", json={"txt": "typo"})
        assert bad.status_code == 400
        assert "unknown scenario field(s) txt" in bad.json()["error"]
        assert http.post("/_standin/scenarios", json={"chunks": 0}).status_code == 400
        assert llm.queued == 0

        assert http.post("/_standin/clear").json() == {"cleared": True}
        assert http.get("/_standin/requests").json() == []


def test_query_string_is_recorded_apart_from_the_path(llm: StandIn) -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 8, "messages": []}
    with httpx2.Client(base_url=llm.url) as http:
        reply = http.post("/v1/messages?beta=true", json=body)
    assert reply.status_code == 200
    assert reply.json()["type"] == "message"
    assert (llm.requests[0].path, llm.requests[0].query) == ("/v1/messages", {"beta": "true"})


def test_bad_scenario_header_is_a_clear_400(oai: openai.OpenAI, llm: StandIn) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(**CHAT, extra_headers={SCENARIO_HEADER: '{"error": 200}'})
    assert "x-standin-scenario: error must be an HTTP status" in caught.value.message

    with pytest.raises(openai.BadRequestError, match="not valid JSON"):
        oai.chat.completions.create(**CHAT, extra_headers={SCENARIO_HEADER: "{nope"})
    assert len(llm.requests) == 2
    assert texts(oai, 1) == [DEFAULT_TEXT]


def test_bad_body_and_unknown_route(llm: StandIn) -> None:
    with httpx2.Client(base_url=llm.url) as http:
        bad = http.post(
            "/v1/chat/completions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["type"] == "invalid_request_error"
        assert "not valid JSON" in bad.json()["error"]["message"]

        anthropic_bad = http.post("/v1/messages", content=b"[1,")
        assert anthropic_bad.status_code == 400
        assert anthropic_bad.json()["error"]["type"] == "invalid_request_error"

        listed = http.post("/v1/embeddings", json=["not", "an", "object"])
        assert listed.status_code == 400
        assert listed.json()["error"]["message"] == "request body must be a JSON object"

        missing = http.post("/v1/nothing", json={})
        assert missing.status_code == 404
        assert "no stand-in route for /v1/nothing" in missing.json()["error"]["message"]
        assert http.get("/_standin/health").json() == {"status": "ok"}

        chunked = http.post(
            "/v1/chat/completions", content=iter([b'{"model": "m",', b' "messages": []}'])
        )
        assert (chunked.status_code, chunked.json()["model"]) == (200, "m")
        assert llm.requests[-1].headers["transfer-encoding"] == "chunked"

        # The server keeps answering on the same connection after bad input.
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_delay_and_chunk_delay(oai: openai.OpenAI) -> None:
    started = time.monotonic()
    texts(oai, 1, extra_headers=Scenario(delay=0.3).to_header())
    assert time.monotonic() - started >= 0.3

    started = time.monotonic()
    stream = oai.chat.completions.create(
        **CHAT, stream=True, extra_headers=Scenario(chunk_delay=0.05, chunks=4).to_header()
    )
    assert len(list(stream)) == 6
    assert time.monotonic() - started >= 5 * 0.05  # five pauses between six events


def test_concurrent_requests_each_get_their_own_answer(oai: openai.OpenAI, llm: StandIn) -> None:
    def call(i: int) -> tuple[str | None, str]:
        reply = oai.chat.completions.create(
            **CHAT, extra_headers=Scenario(text=f"r{i}", delay=0.25).to_header()
        )
        return reply.choices[0].message.content, reply.id

    texts(oai, 1)  # warm the client up before timing
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(call, range(16)))
    elapsed = time.monotonic() - started

    assert [text for text, _ in results] == [f"r{i}" for i in range(16)]
    assert len({reply_id for _, reply_id in results}) == 16
    assert len(llm.requests) == 17
    assert elapsed < 16 * 0.25 / 2  # served in parallel, not one after another


def test_stop_releases_port_and_kept_alive_connections() -> None:
    llm = StandIn().start()
    url = llm.url
    with httpx2.Client(base_url=url) as http:
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
        llm.stop()
        with pytest.raises(httpx2.TransportError):
            http.post("/v1/chat/completions", json=CHAT)
    with pytest.raises(RuntimeError, match="not running"):
        _ = llm.url


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_until_signalled(stop_signal: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "spanledger.standin", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with httpx2.Client(base_url=url, timeout=10) as http:
            http.post("/_standin/scenarios", json={"usage": {"prompt_tokens": 99}})
            reply = http.post("/v1/chat/completions", json=CHAT).json()
            assert reply["usage"]["prompt_tokens"] == 99
            recorded = http.get("/_standin/requests").json()
            assert json.dumps(recorded[0]["json"]) == json.dumps(CHAT)
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
