"""Between the receivers and the pipeline: the memory limiter that refuses data while memory is
high, and the write-ahead log that keeps what was acknowledged until it is settled."""

from spanledger.processor.intake.memory_limiter import (
    EXPANSION,
    MIB,
    MemoryLimiter,
    MemoryLimiterConfig,
)
from spanledger.processor.intake.write_ahead import WriteAhead, WriteAheadConfig

__all__ = [
    "EXPANSION",
    "MIB",
    "MemoryLimiter",
    "MemoryLimiterConfig",
    "WriteAhead",
    "WriteAheadConfig",
]
