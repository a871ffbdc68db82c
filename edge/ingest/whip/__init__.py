"""WHIP ingest: an SDP offer over HTTP in, per publish a checked start, H.264/VP8/Opus CodecConfigs and MediaPackets out."""
