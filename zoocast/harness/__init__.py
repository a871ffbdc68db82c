"""Measurement harness: synthetic stamped publisher in, viewer-side capture times, gaps and latency out."""
