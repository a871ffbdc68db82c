"""REST API at the edge: HTTP requests in, ZooKeeper registry/cluster reads and admin writes out."""
