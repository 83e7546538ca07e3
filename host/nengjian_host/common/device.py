"""Talking to a gateway's USB console: finding the right port, the line-command client, raw REPL.

Owns: turning what a crew types after `--port` into a serial device (by USB serial number or MAC,
never by a /dev/ttyUSB number alone), the client of the firmware console protocol
(nengjian/console/protocol.py: `#ID COMMAND` lines, `@nj {json}` answers), the DeviceFiles methods
(put/get/sha256) on top of it, the raw terminal `nengjian console` opens (open_serial, terminal,
pipe) and the bus scan's console transport. The same code talks to a real board and to the sim
board's pty.

Port specs
----------
    /dev/ttyACM0, COM5      a device path (checked by asking the gateway who it is)
    sn:SERIAL               the USB serial number (ESP32-S3 native USB reports its MAC here)
    mac:AA:BB:CC:DD:EE:FF   the gateway's MAC: matched against USB serial numbers, then by asking
                            every candidate port's console
    sim:DIR                 the sim gateway in DIR (its crew-side pty, DIR/usb or DIR/gateway/usb)
    (nothing)               the one port whose console answers as a Nengjian gateway; several:
                            an error listing them with their serial numbers

Opening a port does not reset the board: DTR and RTS are released before the port opens (on
ESP32 boards with a USB-UART bridge they drive EN and IO0).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from nengjian_host.common.messages import msg, t

try:
    from nengjian_host.common.devicefiles import DeviceUnreachable
except ImportError:  # pragma: no cover - the provisioning module is optional
    class DeviceUnreachable(OSError):
        """The device went away or never answered; the text says what to check."""

PREFIX = b"@nj "
# USB vendors of ESP32 boards and their USB-serial bridges: Espressif (native USB), Silicon Labs
# CP210x, WCH CH34x, FTDI.
GATEWAY_VIDS = {0x303A: "Espressif", 0x10C4: "Silicon Labs", 0x1A86: "WCH", 0x0403: "FTDI"}
GET_WINDOW = 16384


class DeviceGone(DeviceUnreachable):
    """The gateway stopped answering or its port vanished."""


class DeviceError(RuntimeError):
    """The gateway answered, with an error."""


class ServiceButtonNeeded(DeviceError):
    """The gateway refused to replace a trust anchor (update key, CA, client key or certificate, or the
    trust a site.json sets) because its service button was not held (nengjian.console.guard)."""

    zh = ("网关拒绝替换信任锚（升级公钥、CA 证书、客户端密钥或证书，或 site.json 中的信任设置）：请在发送期间"
          "一直按住网关的维护按键（ESP32 板上为 BOOT 键），直到网关确认写入，然后重新运行同一命令")


BUTTON_MARK = "service button"  # in the gateway's refusal (firmware/nengjian/console/guard.py)


class PortNotFound(LookupError):
    """No port matches what the crew asked for; the text lists what there is."""


@dataclass
class PortInfo:
    device: str
    serial_number: str | None = None
    vid: int | None = None
    pid: int | None = None
    description: str = ""

    def label(self) -> str:
        vendor = GATEWAY_VIDS.get(self.vid or -1, "%04x" % self.vid if self.vid else "?")
        return "%s  sn:%s  (%s %s)" % (self.device, self.serial_number or "-", vendor, self.description)


def candidates() -> list[PortInfo]:
    """USB serial ports that could be a gateway (known ESP32 and bridge vendors)."""
    from serial.tools import list_ports

    out = []
    for p in list_ports.comports():
        if p.vid in GATEWAY_VIDS:
            out.append(PortInfo(p.device, p.serial_number, p.vid, p.pid, p.description or ""))
    return out


def _norm_mac(text: str) -> str:
    return "".join(c for c in text.lower() if c in "0123456789abcdef")


def resolve_port(spec: str | None, probe=None) -> str:
    """The device path for a port spec (see the module doc). `probe(path)` returns the gateway id
    a console answers with, or None; it is used for mac: and for an empty spec."""
    if spec and spec.startswith("sim:"):
        d = Path(spec[4:] or ".")
        for p in (d / "usb", d / "gateway" / "usb"):
            if p.exists():
                return str(p)
        raise PortNotFound("no running sim gateway in %s (start one with `nengjian sim --dir %s`)" % (d, d))
    if spec and spec.startswith("sn:"):
        want = spec[3:]
        ports = candidates()
        for p in ports:
            if p.serial_number and p.serial_number.lower() == want.lower():
                return p.device
        raise PortNotFound("no USB port with serial number %s; ports seen:\n  %s" % (
            want, "\n  ".join(p.label() for p in ports) or "(none)"))
    if spec and spec.startswith("mac:"):
        want = _norm_mac(spec[4:])
        ports = candidates()
        for p in ports:
            if p.serial_number and _norm_mac(p.serial_number) == want:
                return p.device
        probe = probe or probe_gateway_id
        for p in ports:
            gid = probe(p.device)
            if gid and _norm_mac(gid) == want:
                return p.device
        raise PortNotFound("no gateway with MAC %s answers on: %s" % (
            spec[4:], ", ".join(p.device for p in ports) or "(no USB serial ports)"))
    if spec:
        if not os.path.exists(spec) and "://" not in spec:
            raise PortNotFound("%s does not exist (plugged in? `nengjian status` without --port lists ports)" % spec)
        return spec
    ports = candidates()
    probe = probe or probe_gateway_id
    found = [(p, probe(p.device)) for p in ports]
    gateways = [(p, g) for p, g in found if g]
    if len(gateways) == 1:
        return gateways[0][0].device
    if not gateways:
        raise PortNotFound("no gateway console answers on the USB ports seen:\n  %s\n"
                           "give --port (sn:SERIAL, mac:MAC, a device path or sim:DIR)" % (
                               "\n  ".join(p.label() for p in ports) or "(none)"))
    raise PortNotFound("several gateways are connected; pick one with --port sn:SERIAL or mac:MAC:\n  %s" % (
        "\n  ".join("%s  gateway %s" % (p.label(), g) for p, g in gateways)))


def probe_gateway_id(device: str, timeout: float = 1.5) -> str | None:
    try:
        with Console(device, timeout=timeout) as con:
            return con.status().get("gateway_id") or "?"
    except (DeviceUnreachable, DeviceError, OSError, ValueError):
        return None


class Console:
    """Client of the firmware's line console on a serial port (or the sim's pty)."""

    def __init__(self, port: str, baud: int = 115200, timeout: float = 10.0, on_line=None):
        self.port = port
        self.baud = baud
        self.timeout = timeout
        self.on_line = on_line  # called with every console line that is not an answer (log lines)
        self.name = "console:%s" % port
        self._ser = None
        self._buf = bytearray()
        self._id = int(time.time() * 1000) % 100000  # ids of an earlier session are not ours
        self._paths: dict | None = None

    # ---- connection
    def open(self) -> Console:
        import serial

        try:
            ser = serial.serial_for_url(self.port, do_not_open=True, baudrate=self.baud, timeout=0.05)
            ser.dtr = False  # keep EN and IO0 alone on boards with an auto-reset circuit
            ser.rts = False
            ser.open()
        except (serial.SerialException, OSError) as e:
            raise DeviceGone(msg("err.dev.open", port=self.port, reason=e)) from None
        self._ser = ser
        try:
            ser.reset_input_buffer()  # what the console said before we came is not an answer
        except (serial.SerialException, OSError):
            pass
        return self

    def close(self) -> None:
        if self._ser is not None:
            try:
                self._ser.close()
            except OSError:
                pass
            self._ser = None

    def __enter__(self) -> Console:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, data: bytes) -> None:
        import serial

        if self._ser is None:
            self.open()
        try:
            self._ser.write(data)
            self._ser.flush()
        except (serial.SerialException, OSError) as e:
            raise DeviceGone(msg("err.dev.write", port=self.port, reason=e)) from None

    def _readline(self, deadline: float) -> bytes | None:
        import serial

        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[:i]).rstrip(b"\r")
                del self._buf[:i + 1]
                return line
            if time.monotonic() >= deadline:
                return None
            try:
                n = self._ser.in_waiting
                chunk = self._ser.read(n or 1)
            except (serial.SerialException, OSError) as e:
                raise DeviceGone(msg("err.dev.read", port=self.port, reason=e)) from None
            if chunk:
                self._buf += chunk

    # ---- requests
    def request(self, command: str, timeout: float | None = None, each=None) -> list[dict]:
        """Send one command; return its answers (the last has "end"). `each(answer)` sees every
        answer as it arrives. Raises DeviceError if the gateway says no, DeviceGone if it is silent."""
        if self._ser is None:
            self.open()
        self._id += 1
        rid = self._id
        self._write(("#%d %s\n" % (rid, command)).encode())
        return self._collect(rid, command, timeout, each)

    def _collect(self, rid: int, command: str, timeout: float | None, each=None) -> list[dict]:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        out = []
        while True:
            line = self._readline(deadline)
            if line is None:
                raise DeviceGone(msg("err.dev.no_answer", port=self.port, command=command.split(" ")[0],
                                     timeout=timeout))
            if not line.startswith(PREFIX):
                if self.on_line:
                    self.on_line(line.decode("utf-8", "replace"))
                continue
            try:
                ans = json.loads(line[len(PREFIX):])
            except ValueError:
                continue  # a line broken by noise: the chunk checks catch what matters
            if ans.get("id") != rid:
                continue
            # Every answer proves the gateway is alive: long answers get time per line.
            deadline = time.monotonic() + timeout
            out.append(ans)
            if each is not None:
                each(ans)
            if ans.get("end"):
                if not ans.get("ok"):
                    raise DeviceError(ans.get("error") or msg("err.dev.refused", command=command))
                return out

    # ---- commands
    def status(self) -> dict:
        st = self.request("status")[-1]
        for k in ("id", "end", "ok"):
            st.pop(k, None)
        return st

    def events(self, n: int = 20) -> list[dict]:
        return [a for a in self.request("events %d" % n, timeout=max(self.timeout, 30)) if a.get("t") == "event"]

    def files(self) -> tuple[list[dict], dict]:
        """(the files a pull copies, the closing answer with gateway_id)."""
        ans = self.request("files", timeout=max(self.timeout, 30))
        return [a for a in ans if a.get("t") == "file"], ans[-1]

    def get_range(self, path: str, offset: int, length: int) -> tuple[bytes, int]:
        """(bytes of path from offset, the file's size now); every chunk's crc32 checked."""
        ans = self.request("get %s %d %d" % (path, offset, length))
        data = bytearray()
        for a in ans:
            if a.get("t") != "data":
                continue
            if a["off"] != offset + len(data):
                raise DeviceGone(msg("err.dev.chunk_missing", port=self.port, path=path, at=offset + len(data)))
            chunk = base64.b64decode(a["b64"])
            if len(chunk) != a["n"] or (binascii.crc32(chunk) & 0xFFFFFFFF) != a["crc"]:
                raise DeviceGone(msg("err.dev.chunk_damaged", port=self.port, path=path, at=a["off"]))
            data += chunk
        end = ans[-1]
        if end.get("n") != len(data):
            raise DeviceGone(msg("err.dev.short", port=self.port, path=path, got=len(data), size=end.get("n")))
        return bytes(data), end.get("size", offset + len(data))

    def sha256_of(self, path: str, length: int | None = None) -> tuple[str, int]:
        """(sha256 hex computed on the gateway, bytes hashed)."""
        cmd = "sha256 %s" % path if length is None else "sha256 %s %d" % (path, length)
        end = self.request(cmd, timeout=max(self.timeout, 60))[-1]
        return end["sha256"], end["n"]

    def put_file(self, path: str, data: bytes) -> dict:
        """Write a file under the gateway's config directory: replaced only when every byte arrived
        with the right sha256 (PATH.new, then rename)."""
        digest = hashlib.sha256(data).hexdigest()
        try:
            ans = self.request("put %s %d %s" % (path, len(data), digest))[-1]
            step = 384
            for off in range(0, len(data), step):
                b64 = base64.b64encode(data[off:off + step]).decode()
                self._id += 1
                rid = self._id
                self._write(("#%d +%s\n" % (rid, b64)).encode())
                ans = self._collect(rid, "put", None)[-1]
        except DeviceError as e:
            if BUTTON_MARK in str(e):
                raise ServiceButtonNeeded("%s (hold the gateway's service button, BOOT on the ESP32 boards, "
                                          "while the file is sent, then run the same command again)" % e) from None
            raise
        if not ans.get("written"):
            raise DeviceError(msg("err.dev.not_written", path=path))
        return ans

    def reset(self) -> None:
        self.request("reset")

    # ---- DeviceFiles (nengjian_host.common.devicefiles): paths relative to the app filesystem
    def _device_path(self, path: str) -> str:
        if self._paths is None:
            self._paths = self.status().get("paths") or {}
        rel = path.lstrip("/")
        for key in ("config", "data"):
            if rel == key or rel.startswith(key + "/"):
                base = self._paths.get(key)
                if base:
                    return base + rel[len(key):]
        return "/" + rel

    def put(self, path: str, data: bytes) -> dict:
        return self.put_file(self._device_path(path), data)

    def get(self, path: str) -> bytes | None:
        dev = self._device_path(path)
        data = bytearray()
        try:
            while True:
                chunk, size = self.get_range(dev, len(data), GET_WINDOW)
                data += chunk
                if not chunk or len(data) >= size:
                    return bytes(data)
        except DeviceError:
            return None

    def sha256(self, path: str) -> str | None:
        try:
            return self.sha256_of(self._device_path(path))[0]
        except DeviceError:
            return None


class RawRepl:
    """mpremote's raw-REPL transport on the same port, without a soft reset (`resume`): Ctrl-C stops
    the application first. What remains after `close()` is the REPL; Ctrl-D or a reset starts the
    gateway again."""

    def __init__(self, port: str, baud: int = 115200):
        from mpremote.transport_serial import SerialTransport

        try:
            self.t = SerialTransport(port, baudrate=baud)
        except Exception as e:  # mpremote raises its own TransportError
            raise DeviceGone(msg("err.dev.open_repl", port=port, reason=e)) from None
        self.t.enter_raw_repl(soft_reset=False)

    def exec(self, code: str) -> bytes:
        return self.t.exec(code)

    def eval(self, expr: str):
        return self.t.eval(expr)

    def read_file(self, path: str) -> bytes:
        return self.t.fs_readfile(path)

    def sha256(self, path: str) -> str:
        return self.t.fs_hashfile(path, "sha256").hex()

    def close(self) -> None:
        try:
            self.t.exit_raw_repl()
        finally:
            self.t.close()

    def __enter__(self) -> RawRepl:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_serial(spec: str | None, baud: int = 115200):
    """(device path, an open pyserial port) of the gateway named by `spec`, for a terminal: DTR and
    RTS released as Console does. PortNotFound or DeviceGone."""
    import serial

    port = resolve_port(spec)
    try:
        ser = serial.serial_for_url(port, do_not_open=True, baudrate=baud, timeout=0.05)
        ser.dtr = False
        ser.rts = False
        ser.open()
    except (serial.SerialException, OSError) as e:
        raise DeviceGone(msg("err.dev.open", port=port, reason=e)) from None
    return port, ser


def terminal(ser, port: str) -> None:
    """An interactive passthrough (pyserial's miniterm) to the console on `ser` until Ctrl-]."""
    import sys

    from serial.tools import miniterm

    print(t("out.console.hint", port=port), file=sys.stderr)
    term = miniterm.Miniterm(ser, echo=False, eol="crlf", filters=["default"])
    term.exit_character = chr(0x1D)
    term.menu_character = chr(0x14)
    term.set_rx_encoding("utf-8")
    term.set_tx_encoding("utf-8")
    term.start()
    try:
        term.join(True)
    except KeyboardInterrupt:
        pass
    term.join()
    term.close()
    print(t("out.console.left"), file=sys.stderr)


def pipe(ser, src, dst, wait: float) -> None:
    """Send each line of `src` to the console on `ser`, copy what comes back to `dst` until `wait`
    seconds after the last line; closes `ser`. DeviceGone if the port fails."""
    import serial

    try:
        ser.reset_input_buffer()
        for line in src:
            ser.write(line.rstrip("\r\n").encode() + b"\r")
        end = time.monotonic() + wait
        while time.monotonic() < end:
            data = ser.read(4096)
            if data:
                dst.write(data.decode("utf-8", "replace").replace("\r\n", "\n"))
                dst.flush()
    except (serial.SerialException, OSError) as e:
        raise DeviceGone("%s: %s" % (ser.port, e)) from None
    finally:
        ser.close()


class ConsoleScanTransport:
    """nengjian_host.install.scan's transport over the console: the gateway runs the scan beside its
    application (console command `scan JSON`, through the Bus it already owns) and the answers come
    back as the JSON lines scan.run_on reads."""

    def __init__(self, port: str, baud: int = 115200, timeout: float = 120.0):
        self.port = port
        self.baud = baud
        self.timeout = timeout

    @staticmethod
    def options_of(code: str) -> dict:
        """The options inside scan.scan_code(options): the one thing this transport runs."""
        import ast

        tree = ast.parse(code)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "main" and node.args:
                return json.loads(ast.literal_eval(node.args[0]))
        raise ValueError(msg("err.dev.only_scan"))

    def exec_lines(self, code: str, timeout: float = 600):
        import queue
        import threading

        opts = self.options_of(code)
        lines: queue.Queue = queue.Queue()

        def each(ans):
            if ans.get("t") == "find":
                lines.put(json.dumps({"find": ans["find"]}))
            elif ans.get("t") == "progress":
                lines.put(json.dumps({"progress": ans["progress"]}))

        def work():
            try:
                with Console(self.port, baud=self.baud, timeout=self.timeout) as con:
                    end = con.request("scan " + json.dumps(opts, separators=(",", ":")), each=each)[-1]
                lines.put(json.dumps({"done": {"found": end.get("found"), "probes": end.get("probes")}}))
            except DeviceError as e:
                lines.put(json.dumps({"error": str(e)}))
            except DeviceUnreachable as e:
                lines.put(e)
            lines.put(None)

        threading.Thread(target=work, name="console-scan", daemon=True).start()
        while True:
            item = lines.get()
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item
