"""RTMP ingest: an encoder's TCP byte stream in, per publish a checked start, H.264/AAC CodecConfigs and MediaPackets out."""
