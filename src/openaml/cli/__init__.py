"""The `openaml` command."""
