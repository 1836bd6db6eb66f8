"""A local stand-in for LLM HTTP APIs (OpenAI, Anthropic, Gemini and Vertex AI, Amazon Bedrock,
Mistral, Cohere, Ollama), for tests, examples and benchmarks.

``StandIn`` serves the real wire protocols (JSON, server-sent events, the AWS event stream,
NDJSON streams) on
``127.0.0.1`` so the real SDKs run unchanged against it::

    with StandIn() as llm:
        client = openai.OpenAI(base_url=llm.openai_base_url, api_key="test", max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers=Scenario(usage={"prompt_tokens": 1200}).to_header(),
        )
        llm.requests[0].json["model"]  # "gpt-4o-mini"

A :class:`Scenario` sets usage figures, text, errors, dropped streams and timing for one
request (``x-standin-scenario`` header) or for the next requests in line (:meth:`StandIn.push`,
or ``POST /_standin/scenarios`` from another process; ``GET /_standin/requests`` lists what was
received). Routes: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/responses``,
``/v1/embeddings``, ``/v1/messages`` (beta included) and ``/v1/messages/count_tokens``; the
Gemini model methods (``…/models/{model}:generateContent`` and the others, Developer API and
Vertex AI paths, see :mod:`spanledger.standin.gemini_wire`); the Bedrock runtime
(``/model/{modelId}/converse`` and the others, see :mod:`spanledger.standin.bedrock_wire`);
Mistral's ``/v1/chat/completions``, ``/v1/fim/completions`` and ``/v1/embeddings`` under
``/mistral`` (``Mistral(server_url=llm.mistral_base_url)``, see
:mod:`spanledger.standin.mistral_wire`); Cohere's ``/v2/chat``, ``/v2/embed`` and ``/v2/rerank``
(``cohere.ClientV2(base_url=llm.url)``, see :mod:`spanledger.standin.cohere_wire`); Ollama's
``/api/chat``, ``/api/generate`` (JSON and NDJSON streams), ``/api/embed`` and
``/api/embeddings`` (``ollama.Client(host=llm.url)``, see :mod:`spanledger.standin.ollama_wire`).
For ``google-genai`` pass ``http_options={"base_url": llm.url}``; for boto3,
``endpoint_url=llm.url`` and any credentials.
Default token counts follow the rules in :mod:`spanledger.standin.tokens`.

Every answered call is billed (:mod:`spanledger.standin.billing`), and the providers' admin
usage and cost APIs serve that bill (:mod:`spanledger.standin.admin_api`), so
``spanledger reconcile`` can run offline against it.
``spanledger standin`` (or ``python -m spanledger.standin --port N``) serves from the command line.
"""

from spanledger.standin.scenario import SCENARIO_HEADER, Scenario, ScenarioError
from spanledger.standin.server import StandIn
from spanledger.standin.state import RecordedRequest
from spanledger.standin.tokens import DEFAULT_TEXT, estimate_tokens, prompt_tokens

__all__ = [
    "DEFAULT_TEXT",
    "SCENARIO_HEADER",
    "RecordedRequest",
    "Scenario",
    "ScenarioError",
    "StandIn",
    "estimate_tokens",
    "prompt_tokens",
]
