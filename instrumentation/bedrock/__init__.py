"""OpenTelemetry instrumentation of Amazon Bedrock through boto3 / botocore.

Usage::

    from spanledger.instrumentation.bedrock import BedrockInstrumentor

    BedrockInstrumentor().instrument()

or with zero code, through the ``spanledger_bedrock`` entry point of ``opentelemetry-instrument``.
The ``converse``, ``converse_stream``, ``invoke_model`` and ``invoke_model_with_response_stream``
calls of a ``bedrock-runtime`` client each get one CLIENT span with ``gen_ai.provider.name``
``aws.bedrock``, the model id as sent and the usage Bedrock reports. See docs/bedrock.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from spanledger.instrumentation.genai import Patch, SdkInstrumentor, call_wrapper

from .package import _instruments
from .patch import describe, settle

__all__ = ["BedrockInstrumentor"]


class BedrockInstrumentor(SdkInstrumentor):
    """Traces the inference calls of botocore's ``bedrock-runtime`` clients."""

    instruments = _instruments

    def patches(self) -> Sequence[Patch]:
        return (
            Patch("botocore.client", "BaseClient._make_api_call", call_wrapper(describe, settle)),
        )
