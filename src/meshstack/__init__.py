"""meshstack: an end-to-end conformance harness for an edge service-mesh stack."""

__version__ = "0.1.0"
