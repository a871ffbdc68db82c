"""WebRTC playback (WHEP): the worker's low-latency feed in, pre-encoded RTP to every viewer out."""
