"""A local stand-in for the OpenAI and Anthropic HTTP APIs, for tests, examples and benchmarks.

``StandIn`` serves the real wire protocols (JSON and server-sent events) on ``127.0.0.1`` so
the real SDKs run unchanged against it; a :class:`Scenario` sets usage figures, text, errors,
dropped streams and timing per request. Default token counts follow the rules in
:mod:`spanledger.standin.tokens`.
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
