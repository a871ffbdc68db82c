"""One stream's worker: media-link packets in, fenced fMP4 renditions (init, segments, index) in Redis out."""
