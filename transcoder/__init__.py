"""The transcoder role: assignments in (ZooKeeper), ladder renditions out (fenced segments in Redis)."""
