"""flowmail: an event-driven email platform on Kafka, Faust and OpenSearch."""

__version__ = "0.1.0"
