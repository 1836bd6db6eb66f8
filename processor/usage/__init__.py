"""Token usage of inference spans, read from any GenAI instrumentation dialect.

```python
from spanledger.processor.usage import extract_usage, INFERENCE_OPERATIONS

usage = extract_usage(span_attributes, span_name)  # Usage, or None when not an inference call
```
"""

from spanledger.processor.usage.extract import (
    extract_usage,
    has_incomplete_totals,
    has_unusable_counts,
)
from spanledger.processor.usage.operations import INFERENCE_OPERATIONS
from spanledger.processor.usage.providers import normalize_provider

__all__ = [
    "INFERENCE_OPERATIONS",
    "extract_usage",
    "has_incomplete_totals",
    "has_unusable_counts",
    "normalize_provider",
]
