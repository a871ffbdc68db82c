"""Local infrastructure: ZooKeeper and Redis as child processes for `zoocast up` and the tests."""
