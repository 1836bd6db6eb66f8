"""Pricing of counted calls from genai-prices, user overrides and provider-reported costs.

```python
from spanledger.processor.pricing import PriceBook, PricingConfig

book = PriceBook(PricingConfig(overrides="prices.yaml", markup_percent=0.0, prefer_reported=True))
cost = book.price(usage, start_time_unix_nano)
```
"""

from spanledger.processor.pricing.book import PriceBook
from spanledger.processor.pricing.config import PricingConfig
from spanledger.processor.pricing.overrides import OverrideRule, OverridesError, load_overrides
from spanledger.processor.pricing.price_set import Amounts, PriceSet, price_usage
from spanledger.processor.pricing.table import PriceTable

__all__ = [
    "Amounts",
    "OverrideRule",
    "OverridesError",
    "PriceBook",
    "PriceSet",
    "PriceTable",
    "PricingConfig",
    "load_overrides",
    "price_usage",
]
