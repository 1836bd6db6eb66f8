"""Which model id a call is priced by, and how a provider's id is looked up in genai-prices.

Most providers name the model the same way in the request, the response and genai-prices.
Two do not:

- **Amazon Bedrock** is called with a model id that says more than the model: a cross-region
  inference profile (``us.``, ``eu.``, ``apac.``, ``global.``...) and a version
  (``anthropic.claude-sonnet-4-5-20250929-v1:0``), or an ARN. Region scope and model are priced
  differently (a ``global.`` profile costs less than a regional one for recent Claude models), so
  the id the call was made with is priced (``Usage.model``), not the model name an answer body
  may carry. An ARN
  of a foundation model or of a system inference profile is priced by the id it ends with;
  other ARNs (application inference profiles, provisioned throughput, custom and imported
  models, marketplace endpoints) name no model and no public price: such a call is
  ``unpriced`` with a reason that names the ARN, never priced as some other model.
- **Gemini and Vertex AI** ids may be resource names: ``models/gemini-2.5-flash``,
  ``publishers/google/models/gemini-2.5-flash``, ``projects/p/locations/l/publishers/google/
  models/gemini-2.5-flash`` and Vertex's ``google/gemini-2.5-flash`` are all
  ``gemini-2.5-flash``.

Override rules match the id as the span carries it; only the genai-prices lookup sees the id
resolved here.
"""

from __future__ import annotations

from spanledger.processor.model import BEDROCK

GOOGLE_PROVIDERS = frozenset({"gcp.gemini", "gcp.vertex_ai", "gcp.gen_ai"})

BEDROCK_MODEL_ARNS = frozenset({"foundation-model", "inference-profile"})
"""Bedrock ARN resource types whose resource id is a model id genai-prices knows."""


class NoTableId(ValueError):
    """A model id that names no model with a public price; the message says why."""


def table_model_id(provider: str | None, model: str) -> str:
    """The id to look ``model`` up by in genai-prices; raise :class:`NoTableId` when it has none."""
    if provider == BEDROCK and model.startswith("arn:"):
        return _bedrock_arn_model(model)
    if provider in GOOGLE_PROVIDERS:
        return _google_model(model)
    return model


def _bedrock_arn_model(arn: str) -> str:
    # arn:PARTITION:bedrock:REGION:ACCOUNT:RESOURCE-TYPE/RESOURCE-ID
    parts = arn.split(":", 5)
    resource = parts[5] if len(parts) == 6 and parts[2] == "bedrock" else ""
    kind, _, resource_id = resource.partition("/")
    if kind in BEDROCK_MODEL_ARNS and resource_id:
        return resource_id
    described = f"a {kind}" if kind else "no model"
    raise NoTableId(
        f"the Bedrock ARN {arn!r} names {described}, not a model with a public price; "
        "add it to the pricing overrides file"
    )


def _google_model(model: str) -> str:
    if model.startswith("google/"):
        return model.removeprefix("google/")
    head, found, rest = model.rpartition("models/")
    if found and rest and "/" not in rest and (not head or head.endswith("/")):
        return rest
    return model
