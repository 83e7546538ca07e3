"""The plain static server the update-channel tests fetch from."""

import socket
import time

from nengjian_host.sim.staticweb import StaticWeb


def test_a_download_the_client_breaks_off_is_counted_not_printed(tmp_path, capsys):
    # Larger than any socket buffer, so the server is still writing when the client goes.
    (tmp_path / "bundle.bin").write_bytes(b"\0" * (16 << 20))
    with StaticWeb(tmp_path) as web:
        host, port = web.url[len("http://"):].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(b"GET /bundle.bin HTTP/1.0\r\n\r\n")
            assert conn.recv(64).startswith(b"HTTP/1.0 200")
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        deadline = time.monotonic() + 30
        while web.broken_off == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert web.broken_off == 1
        assert web.paths == ["/bundle.bin"]
    assert "Traceback" not in capsys.readouterr().err
