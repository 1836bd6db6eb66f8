"""Between the receivers and the pipeline: the memory limiter that refuses data while memory is
high, and the write-ahead log that keeps what was acknowledged until it is settled."""
