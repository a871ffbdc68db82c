"""HLS serving: rendition index and segment entries from Redis in, m3u8 text and fMP4 bytes out (over the fast path, fast.py, or aiohttp, routes.py)."""
