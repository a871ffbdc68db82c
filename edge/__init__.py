"""The edge role: publishers (RTMP, WHIP) and viewers (HLS, WHEP) in, the media link and HTTP answers out."""
