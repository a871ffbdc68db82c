"""Publish the test pattern + tone with FFmpeg's WHIP muxer (the FFmpeg inside PyAV).

Run as a process (`python -m tests.edge.whip.ffmpeg_push URL KEY SECONDS CERTDIR`): PyAV holds
the GIL while the muxer does its HTTP exchange, which would stall an edge on the same loop.

FFmpeg's DTLS certificate is given as an ECDSA one: with its own default certificate the DTLS
handshake with aiortc fails (aiortc's client offers only ECDHE-ECDSA cipher suites, and a TLS
alert comes back). OBS (libdatachannel) and browsers use ECDSA certificates by default.
"""

from __future__ import annotations

import datetime
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from zoocast.harness.pattern import TestPattern, Tone

W, H, FPS = 320, 180, 15


def ecdsa_certificate(folder: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ffmpeg-whip")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def push(url: str, key: str, seconds: float, folder: Path) -> None:
    cert_file, key_file = ecdsa_certificate(folder)
    options = {"authorization": key, "cert_file": cert_file, "key_file": key_file}
    out = av.open(url, "w", format="whip", options=options)
    try:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        video.codec_context.profile = "Constrained Baseline"  # type: ignore[attr-defined]
        video.codec_context.options = {  # type: ignore[attr-defined]
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": "keyint=15:bframes=0:repeat-headers=1",
        }
        audio = out.add_stream("libopus", rate=48_000, layout="stereo")
        audio.bit_rate = 64_000
        pattern, tone = TestPattern(W, H, FPS), Tone(samples=960)
        start = time.monotonic()
        for i in range(int(seconds * FPS)):
            time.sleep(max(0.0, start + i / FPS - time.monotonic()))
            frame = pattern.frame(i, time.time_ns() // 1000)
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(video.encode(frame))
            while tone.next_time < (i + 1) / FPS:
                out.mux(audio.encode(tone.frame()))
    finally:
        out.close()  # the muxer sends DELETE on the Location


if __name__ == "__main__":
    push(sys.argv[1], sys.argv[2], float(sys.argv[3]), Path(sys.argv[4]))
