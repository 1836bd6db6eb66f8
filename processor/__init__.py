"""The spanledger processor: receive OTLP, price LLM calls, roll cost up, forward."""
