"""The ML engine: pure functions over Arrow record batches; no HTTP, store, clock or environment."""
