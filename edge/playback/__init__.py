"""Playback at the edge: Redis segments and playlists in, HLS responses to viewers out."""
