"""The ground floor: settings, vocabulary, the catalogue of domain events, Avro contracts and
the clients' connection settings. It imports nothing else of flowmail; every other package
(processors, providers, streams, the flowmail roof, bench) builds on it."""
