"""Ingest at the edge: publishers' protocols in, codec configs and media packets into a publish sink out."""
