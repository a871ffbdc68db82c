"""WebRTC plumbing shared by the edge and the test harness: ICE settings in, aiortc configuration out."""
