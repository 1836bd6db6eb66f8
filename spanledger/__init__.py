"""spanledger: attribute LLM spend to customers, features, teams and environments."""

from spanledger.version import __version__

__all__ = ["__version__"]
