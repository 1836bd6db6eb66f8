"""Real google-genai clients for the stand-in: Gemini Developer API and Vertex AI."""

from __future__ import annotations

from collections.abc import Callable

import google.oauth2.credentials
from google import genai
from google.genai import types

from spanledger.standin import StandIn


def gemini_client(llm: StandIn) -> genai.Client:
    """A Gemini Developer API client (API key) for the stand-in."""
    return genai.Client(api_key="test-key", http_options={"base_url": llm.url})


def vertex_client(llm: StandIn) -> genai.Client:
    """A Vertex AI client for the stand-in, with an access token that never needs a refresh."""
    credentials = google.oauth2.credentials.Credentials(token="test-token")
    return genai.Client(
        vertexai=True,
        project="test-project",
        location="us-central1",
        credentials=credentials,
        http_options={"base_url": llm.url},
    )


CLIENTS: dict[str, Callable[[StandIn], genai.Client]] = {
    "gcp.gemini": gemini_client,
    "gcp.vertex_ai": vertex_client,
}


def reports_embedding_usage(reply: types.EmbedContentResponse) -> bool:
    """Whether the SDK kept the answer's token counts (google-genai drops those of the Developer
    API's embeddings before 3.1)."""
    statistics = [e.statistics for e in reply.embeddings or () if e.statistics is not None]
    return getattr(reply, "usage_metadata", None) is not None or bool(statistics)
