"""Files on a gateway, whatever carries them: the `DeviceFiles` protocol and its plain implementations.

A provisioning or sync step only needs three things from a device: put a file atomically, read one
back, and hash one (to skip what is already there). Implementations here:

  DirDevice      a directory (the sim board's gateway directory, or a staging tree)
  LfsImageDevice a littlefs image in memory or in a file (the app filesystem before it is flashed)
  MpremoteDevice a board on USB through the `mpremote` command (the developer path)

Colleagues' transports (USB console, the sim's pty) implement the same three methods.

`put` is atomic on every implementation: the bytes go to `<path>.tmp` and are renamed over
`<path>`, so a cable pulled mid-write leaves either the old file or the new one, never half of one
(littlefs and POSIX renames are atomic). A broken link raises DeviceUnreachable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Protocol

from nengjian_host.common.messages import msg


class DeviceUnreachable(OSError):
    """The device went away or never answered; the text says what to check."""


class DeviceFiles(Protocol):
    name: str

    def put(self, path: str, data: bytes) -> None: ...

    def get(self, path: str) -> bytes | None: ...

    def sha256(self, path: str) -> str | None: ...


def _clean(path: str) -> str:
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts) or not parts:
        raise ValueError(msg("devfiles.bad_path", path=repr(path)))
    return "/".join(parts)


class DirDevice:
    """A directory standing for a device's filesystem (sim gateways: NJ_SIM_DIR). `private`: it receives
    secrets (provisioning: keys, the site config with its PINs), so its folders are 0700 and its files
    0600 (nengjian_host.common.private)."""

    def __init__(self, root: str | Path, private: bool = False):
        self.root = Path(root)
        self.name = "dir:%s" % self.root
        self.private = private

    def _p(self, path: str) -> Path:
        return self.root / _clean(path)

    def put(self, path: str, data: bytes) -> None:
        p = self._p(path)
        if self.private:
            from nengjian_host.common import private

            private.make_dir(self.root)
            private.make_dir(p.parent)
            private.write_file(p, data)
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)

    def get(self, path: str) -> bytes | None:
        try:
            return self._p(path).read_bytes()
        except FileNotFoundError:
            return None

    def sha256(self, path: str) -> str | None:
        data = self.get(path)
        return None if data is None else hashlib.sha256(data).hexdigest()

    def remove(self, path: str) -> None:
        try:
            self._p(path).unlink()
        except FileNotFoundError:
            pass


class LfsImageDevice:
    """A littlefs2 image (the app filesystem before flashing). `image()` returns the current bytes;
    with `path`, `save()` writes it back atomically."""

    def __init__(self, image: bytes, path: str | Path | None = None):
        from nengjian_host.common import bundle

        self._fs = bundle._lfs(len(image), mount=True, buffer=bytearray(image))
        self.path = Path(path) if path else None
        self.name = "lfs:%s" % (self.path or "memory")

    @classmethod
    def from_file(cls, path: str | Path) -> LfsImageDevice:
        return cls(Path(path).read_bytes(), path)

    def put(self, path: str, data: bytes) -> None:
        rel = _clean(path)
        parent = rel.rpartition("/")[0]
        if parent:
            self._fs.makedirs(parent, exist_ok=True)
        with self._fs.open(rel + ".tmp", "wb") as f:
            f.write(data)
        self._fs.rename(rel + ".tmp", rel)

    def get(self, path: str) -> bytes | None:
        try:
            with self._fs.open(_clean(path), "rb") as f:
                return f.read()
        except Exception:  # littlefs raises its own error type for a missing file
            return None

    def sha256(self, path: str) -> str | None:
        data = self.get(path)
        return None if data is None else hashlib.sha256(data).hexdigest()

    def image(self) -> bytes:
        return bytes(self._fs.context.buffer)

    def save(self) -> None:
        if self.path is None:
            raise ValueError(msg("devfiles.in_memory"))
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(self.image())
        tmp.replace(self.path)


# Runs on the gateway: sha256 of each listed file (None if missing), as one JSON line.
_HASH_SCRIPT = """
import json, hashlib, binascii
r = {}
for p in %s:
    try:
        h = hashlib.sha256()
        with open(p, 'rb') as f:
            while True:
                b = f.read(512)
                if not b:
                    break
                h.update(b)
        r[p] = binascii.hexlify(h.digest()).decode()
    except OSError:
        r[p] = None
print('NJHASH' + json.dumps(r))
"""


class MpremoteDevice:
    """A MicroPython board on USB through the `mpremote` command (what a developer's laptop has).

    `resume` skips the soft reset (needed for the unix port and for a gateway that must keep
    running). The gateway must let mpremote in: see docs/INSTALLER.md (Ctrl-C reaches the REPL).
    """

    def __init__(self, port: str, resume: bool = True, timeout: float = 60):
        self.port = port
        self.resume = resume
        self.timeout = timeout
        self.name = "mpremote:%s" % port

    def _run(self, *cmd: str) -> str:
        argv = [sys.executable, "-m", "mpremote", "connect", self.port]
        if self.resume:
            argv.append("resume")
        argv += list(cmd)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise DeviceUnreachable(msg("devfiles.no_answer", port=self.port, s=int(self.timeout))) from None
        if proc.returncode:
            err = (proc.stderr or proc.stdout).strip().splitlines()
            raise DeviceUnreachable(msg("devfiles.mpremote_failed", port=self.port, cmd=cmd[0] if cmd else "",
                                        err=err[-1] if err else msg("devfiles.no_output")))
        return proc.stdout

    def hashes(self, paths: list[str]) -> dict[str, str | None]:
        devpaths = ["/" + _clean(p) for p in paths]
        out = self._run("exec", _HASH_SCRIPT % json.dumps(devpaths))
        for line in out.splitlines():
            if line.startswith("NJHASH"):
                got = json.loads(line[6:])
                return {p: got.get("/" + _clean(p)) for p in paths}
        raise DeviceUnreachable(msg("devfiles.odd_answer", port=self.port))

    def sha256(self, path: str) -> str | None:
        return self.hashes([path])[path]

    def put(self, path: str, data: bytes) -> None:
        dev = "/" + _clean(path)
        parent = dev.rpartition("/")[0]
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(data)
            local = f.name
        try:
            mk = ("import os\nfor d in %s:\n    try:\n        os.mkdir(d)\n    except OSError:\n        pass\n"
                  % json.dumps(_parents(parent)))
            self._run("exec", mk, "+", "fs", "cp", local, ":" + dev + ".tmp", "+",
                      "exec", "import os; os.rename(%s, %s)" % (json.dumps(dev + ".tmp"), json.dumps(dev)))
        finally:
            os.unlink(local)

    def get(self, path: str) -> bytes | None:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "f"
            try:
                self._run("fs", "cp", ":/" + _clean(path), str(local))
            except DeviceUnreachable as e:
                if "ENOENT" in str(e) or "No such file" in str(e):
                    return None
                raise
            return local.read_bytes()

    def __repr__(self) -> str:
        return "MpremoteDevice(%s)" % shlex.quote(self.port)


def _parents(path: str) -> list[str]:
    out = []
    cur = ""
    for part in path.strip("/").split("/"):
        if part:
            cur += "/" + part
            out.append(cur)
    return out


def hashes(device: DeviceFiles, paths: list[str]) -> dict[str, str | None]:
    """sha256 of many files, in one round trip where the device offers it."""
    many = getattr(device, "hashes", None)
    if many:
        return many(paths)
    return {p: device.sha256(p) for p in paths}
