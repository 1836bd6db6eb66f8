"""Token usage of inference spans, read from any GenAI instrumentation dialect.

```python
from spanledger.processor.usage import extract_usage, INFERENCE_OPERATIONS

usage = extract_usage(span_attributes, span_name)  # Usage, or None when not an inference call
```

``is_candidate(span_bytes)`` says cheaply whether a serialized span may be one at all.
"""

from spanledger.processor.usage.candidates import (
    candidate_check,
    candidate_markers,
    is_candidate,
)
from spanledger.processor.usage.extract import (
    CALL_KEYS,
    extract_usage,
    has_incomplete_totals,
    has_unusable_counts,
)
from spanledger.processor.usage.operations import INFERENCE_OPERATIONS
from spanledger.processor.usage.provider_names import normalize_provider

__all__ = [
    "CALL_KEYS",
    "INFERENCE_OPERATIONS",
    "candidate_check",
    "candidate_markers",
    "extract_usage",
    "has_incomplete_totals",
    "has_unusable_counts",
    "is_candidate",
    "normalize_provider",
]
