"""The coordinator role: ZooKeeper membership, publishers and drains in; placements and assignments out."""
