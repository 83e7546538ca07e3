"""The reference platform's own trust boundary: its admin endpoints (every device's secretKey, the fault
switch) are not on the API port and need a token on their own; its threads and the time a request may
take are bounded, so a client that opens connections and says nothing cannot make it spawn threads
without end or hold one for ever."""

import http.client
import json
import os
import select
import socket
import stat
import subprocess
import sys
import threading

import pytest
from nengjian_host.common.paths import ROOT
from nengjian_host.sim.refplatform import RefPlatform
from nengjian_host.sim.refplatform import server as refserver

ENTERPRISE = "91330000573973053F"


def call(base, path, body=None, method="POST", token=None, timeout=5.0):
    host, port = base.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def register(p):
    status, reply = call(p.url, "/api/register", {"region": "441900", "enterpriseCode": ENTERPRISE})
    assert status == 200 and reply["responseCode"] == "0", reply
    return reply


@pytest.mark.parametrize("variant", ["plain", "sm4-ecb"])
def test_admin_endpoints_are_off_by_default_and_never_on_the_api_port(tmp_path, variant):
    with RefPlatform(db_path=str(tmp_path / "p.sqlite"), variant=variant) as p:
        reply = register(p)
        assert p.admin_url is None
        for method, path, body in (("GET", "/admin/devices", None), ("GET", "/admin/records", None),
                                   ("GET", "/admin/stats", None), ("POST", "/admin/fault", {"mode": "down"}),
                                   ("POST", "/admin/clear", {"devices": True})):
            status, answer = call(p.url, path, body, method=method)
            assert status in (404, 405), (path, status, answer)
            if variant == "sm4-ecb":
                assert reply["secretKey"] not in json.dumps(answer)
        assert p.fault == {"mode": "ok"} and len(p.devices()) == 1  # nothing switched, nothing cleared


def test_admin_endpoints_on_their_port_need_the_token(tmp_path):
    with RefPlatform(db_path=str(tmp_path / "p.sqlite"), variant="sm4-ecb", admin_port=0) as p:
        key = register(p)["secretKey"]
        assert p.admin_url and p.admin_url != p.url and len(p.admin_token) >= 24
        for token in (None, "", "wrong", p.admin_token[:-1]):
            status, answer = call(p.admin_url, "/admin/devices", method="GET", token=token)
            assert status == 401 and key not in json.dumps(answer), token
            assert call(p.admin_url, "/admin/fault", {"mode": "down"}, token=token)[0] == 401
        assert p.fault == {"mode": "ok"}
        status, devices = call(p.admin_url, "/admin/devices", method="GET", token=p.admin_token)
        assert status == 200 and devices[0]["secretKey"] == key
        # The admin port is not a second way into the API.
        assert call(p.admin_url, "/api/register", {"region": "441900", "enterpriseCode": ENTERPRISE},
                    token=p.admin_token)[0] == 404


def test_cli_admin_port_writes_its_token_for_the_owner_only(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "host"), PYTHONUNBUFFERED="1")
    env.pop("NENGJIAN_ADMIN_TOKEN", None)
    db = tmp_path / "run" / "p.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "nengjian_host.sim.refplatform", "--port", "0", "--admin-port",
                             "0", "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        assert proc.stdout.readline().startswith("listening on http://127.0.0.1:")
        line = proc.stdout.readline()
        assert line.startswith("admin endpoints on http://127.0.0.1:"), line + proc.stderr.read()
        admin = line.split()[3]
        token_file = tmp_path / "run" / "p.sqlite.admin-token"
        token = token_file.read_text().strip()
        assert token not in line and stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert call(admin, "/admin/stats", method="GET")[0] == 401
        assert call(admin, "/admin/stats", method="GET", token=token)[0] == 200
        proc.terminate()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _workers():
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def test_connections_that_say_nothing_get_a_bounded_number_of_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(refserver, "MAX_WORKERS", 4, raising=False)
    before = len(_workers())
    with RefPlatform(db_path=str(tmp_path / "p.sqlite")) as p:
        socks = [socket.create_connection(("127.0.0.1", p.port), timeout=5) for _ in range(12)]
        try:
            # The four served connections wait for their request; each one past them is closed at once.
            closed = set()
            for _ in range(100):  # a bound: each round waits at most 0.1 s for the server's close
                ready, _w, _x = select.select([s for s in socks if s not in closed], [], [], 0.1)
                for s in ready:
                    try:
                        if s.recv(1) == b"":
                            closed.add(s)
                    except ConnectionError:
                        closed.add(s)
                if len(closed) >= 8 and p.stats()["busyRefusals"] >= 8:
                    break
            assert len(closed) == 8 and p.stats()["busyRefusals"] == 8
            assert len(_workers()) - before <= 4
        finally:
            for s in socks:
                s.close()
        # The slots come back: the platform serves again.
        for _ in range(50):
            try:
                register(p)
                break
            except (ConnectionError, http.client.RemoteDisconnected):
                continue  # a worker still finishing with a closed socket
        else:
            pytest.fail("the platform did not serve again once the silent connections were closed")


def test_a_request_dribbled_a_byte_at_a_time_is_cut_off(tmp_path, monkeypatch):
    monkeypatch.setattr(refserver, "REQUEST_TIMEOUT_S", 1.0, raising=False)
    with RefPlatform(db_path=str(tmp_path / "p.sqlite")) as p:
        s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        try:
            s.sendall(b"POST /api/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100000\r\n\r\n")
            cut = False
            # A body byte every 50 ms, each well within the idle timeout: 200 of them take 10 s or more,
            # far past the 1 s a request may take.
            for _ in range(200):
                try:
                    s.sendall(b" ")
                except OSError:
                    cut = True
                    break
                ready, _w, _x = select.select([s], [], [], 0.05)
                if ready:
                    try:
                        cut = s.recv(1) == b""
                    except ConnectionError:
                        cut = True
                    if cut:
                        break
            assert cut, "the platform kept waiting for a request that never ends"
        finally:
            s.close()
        register(p)  # and it still serves
