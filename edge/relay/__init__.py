"""Per-stream hub at the ingest edge: packets from a publisher in, GOP cache and media link to the transcoder out."""
