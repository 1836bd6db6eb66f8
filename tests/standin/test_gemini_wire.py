"""The Gemini wire protocol of the stand-in: Developer API and Vertex AI paths, JSON and SSE,
embeddings, usage figures and errors, on the raw HTTP and through the real google-genai SDK."""

from __future__ import annotations

import json

import google.oauth2.credentials
import httpx2
import pytest
from google import genai
from google.genai import errors

from spanledger.standin import DEFAULT_TEXT, Scenario, StandIn, estimate_tokens

CONTENTS = [{"role": "user", "parts": [{"text": "What is the capital of France?"}]}]
DEVELOPER = "/v1beta/models/gemini-2.5-flash"
VERTEX = "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash"


def sse_data(body: str) -> list[dict]:
    return [
        json.loads(line[len("data: ") :]) for line in body.splitlines() if line.startswith("data: ")
    ]


@pytest.mark.parametrize("path", [DEVELOPER, VERTEX], ids=["developer", "vertex"])
def test_generate_content_answers_with_usage_metadata(llm: StandIn, path: str) -> None:
    with httpx2.Client(base_url=llm.url) as http:
        reply = http.post(f"{path}:generateContent", json={"contents": CONTENTS}).json()

    (candidate,) = reply["candidates"]
    assert candidate["content"] == {"role": "model", "parts": [{"text": DEFAULT_TEXT}]}
    assert candidate["finishReason"] == "STOP"
    assert reply["modelVersion"] == "gemini-2.5-flash"
    assert reply["usageMetadata"] == {
        "promptTokenCount": 8,
        "candidatesTokenCount": estimate_tokens(DEFAULT_TEXT),
        "totalTokenCount": 8 + estimate_tokens(DEFAULT_TEXT),
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
    }
    assert ("createTime" in reply) is (path == VERTEX)


def test_stream_sends_usage_on_every_chunk_and_completes_it_on_the_last(llm: StandIn) -> None:
    usage = {"promptTokenCount": 1200, "cachedContentTokenCount": 1000, "thoughtsTokenCount": 30}
    with httpx2.Client(base_url=llm.url) as http:
        reply = http.post(
            f"{DEVELOPER}:streamGenerateContent",
            params={"alt": "sse"},
            json={"contents": CONTENTS},
            headers=Scenario(usage=usage, chunks=3).to_header(),
        )

    assert reply.headers["content-type"].startswith("text/event-stream")
    chunks = sse_data(reply.text)
    assert (
        "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == DEFAULT_TEXT
    )
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, None, "STOP"]
    assert [set(c["usageMetadata"]) for c in chunks[:-1]] == [
        {"promptTokenCount", "totalTokenCount"}
    ] * 2
    final = chunks[-1]["usageMetadata"]
    candidates = estimate_tokens(DEFAULT_TEXT)
    assert final["candidatesTokenCount"] == candidates
    assert final["cachedContentTokenCount"] == 1000
    assert final["totalTokenCount"] == 1200 + candidates + 30


def test_a_stream_error_is_a_data_chunk_holding_the_error(llm: StandIn) -> None:
    with httpx2.Client(base_url=llm.url) as http:
        reply = http.post(
            f"{VERTEX}:streamGenerateContent?alt=sse",
            json={"contents": CONTENTS},
            headers=Scenario(stream_error_after=1).to_header(),
        )

    chunks = sse_data(reply.text)
    assert len(chunks) == 2
    assert chunks[1] == {
        "error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}
    }


def test_errors_have_google_s_error_body(llm: StandIn) -> None:
    with httpx2.Client(base_url=llm.url) as http:
        reply = http.post(
            f"{DEVELOPER}:generateContent",
            json={"contents": CONTENTS},
            headers=Scenario(error=429, retry_after=2).to_header(),
        )

    assert reply.status_code == 429
    assert reply.headers["retry-after"] == "2"
    assert reply.json() == {
        "error": {"code": 429, "message": "RESOURCE_EXHAUSTED.", "status": "RESOURCE_EXHAUSTED"}
    }


def test_embedding_methods_count_their_input(llm: StandIn) -> None:
    first = {"parts": [{"text": "alpha beta"}]}
    second = {"parts": [{"text": "gamma"}]}
    with httpx2.Client(base_url=llm.url) as http:
        batch = http.post(
            "/v1beta/models/gemini-embedding-001:batchEmbedContents",
            json={"requests": [{"content": first}, {"content": second, "outputDimensionality": 4}]},
        ).json()
        single = http.post(
            "/v1beta1/projects/p/locations/l/publishers/google/models/gemini-embedding-001"
            ":embedContent",
            json={"content": first},
        ).json()
        predicted = http.post(
            "/v1beta1/projects/p/locations/l/publishers/google/models/text-embedding-005:predict",
            json={"instances": [{"content": "alpha beta"}, {"content": "gamma"}]},
        ).json()

    assert [len(e["values"]) for e in batch["embeddings"]] == [8, 4]
    assert batch["usageMetadata"] == {"promptTokenCount": 3 + 2, "totalTokenCount": 5}
    assert single["usageMetadata"]["promptTokenCount"] == 3
    assert single["embedding"]["values"] == batch["embeddings"][0]["values"]
    assert [p["embeddings"]["statistics"]["token_count"] for p in predicted["predictions"]] == [
        3,
        2,
    ]
    assert predicted["metadata"] == {"billableCharacterCount": 15}


def test_tool_calls_are_function_call_parts(llm: StandIn) -> None:
    scenario = Scenario(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    with httpx2.Client(base_url=llm.url) as http:
        reply = http.post(
            f"{DEVELOPER}:generateContent",
            json={"contents": CONTENTS},
            headers=scenario.to_header(),
        ).json()

    parts = reply["candidates"][0]["content"]["parts"]
    assert parts == [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]


def test_the_real_sdk_reads_every_shape(llm: StandIn) -> None:
    credentials = google.oauth2.credentials.Credentials(token="test-token")
    vertex = genai.Client(
        vertexai=True,
        project="test-project",
        location="europe-west4",
        credentials=credentials,
        http_options={"base_url": llm.url},
    )
    developer = genai.Client(api_key="test-key", http_options={"base_url": llm.url})

    for client in (developer, vertex):
        reply = client.models.generate_content(model="gemini-2.5-flash", contents="hello")
        assert reply.text == DEFAULT_TEXT
        chunks = list(
            client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
        )
        assert "".join(chunk.text for chunk in chunks) == DEFAULT_TEXT
        embedded = client.models.embed_content(model="gemini-embedding-001", contents="hello")
        assert embedded.embeddings[0].values
    llm.push(Scenario(error=404))
    with pytest.raises(errors.ClientError) as raised:
        developer.models.generate_content(model="gemini-2.5-flash", contents="hello")

    assert raised.value.status == "NOT_FOUND"
    assert llm.requests[3].path.startswith("/v1beta1/projects/test-project/locations/europe-west4/")
    assert llm.requests[3].headers["authorization"] == "Bearer test-token"
    assert llm.requests[0].headers["x-goog-api-key"] == "test-key"
