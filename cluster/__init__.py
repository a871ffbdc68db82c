"""Shared contracts of the roles: ZooKeeper tree and payloads in, Redis keys and media-link frames out."""
