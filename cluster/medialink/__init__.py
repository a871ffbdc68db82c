"""The media link between edge and transcoder: encoded packets in, length-prefixed frames out."""
