"""Placement decisions, pure: a snapshot of the cluster in, the changes to write out."""
