"""Trace ingestion's pure layer: an OTLP/HTTP body in, normalised span records out.

``otlp.decode_body`` reads the body (protobuf, OTLP/JSON or the agiflow-sdk dialect, any Content-Encoding,
bounded), ``semconv`` maps each convention's attributes onto the span store's columns, and ``records``
holds what comes out. The receiver, the bus and the span writer build on this; none of it does I/O.
Nothing is imported here, so a span store reading ``records`` does not load protobuf.
"""
