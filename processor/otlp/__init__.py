"""The OTLP wire format: signals, the protobuf wire read in place, the JSON encoding, and
attribute values."""
