"""ZooKeeper access: kazoo's threads in, asyncio futures, watches, session states and recipes out."""
