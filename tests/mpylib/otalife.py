"""The pieces of a gateway's update life that the update power-cut sweeps share, on MicroPython
(tests/firmware/ota/test_slots_powercut.py over directory slots, test_romfs_powercut.py over ROMFS
stores): pushing a bundle as the console receives it, fetching one for the check at boot, proving a
slot signed, what a pointer left by a cut must satisfy, and that the gateway goes on after it.

`obs` is the sweep's record of the run (cutsweep.run's new_obs): "confirmed" (versions confirmed, in
order), "confirming" (the one a confirm was writing), "switched" (a bundle was installed)."""

import os

from nengjian.core import statefile
from nengjian.ota import proof, slots
from nengjian.ota import updater as U

BUILTIN = "0.1.0"


class Life:
    def __init__(self, root, keypath, bundles, obs, parts=None):
        """parts(): the ROMFS stores a slot proves against (None: directory slots)."""
        self.root = root
        self.keypath = keypath
        self.key = U.load_key(keypath)
        self.bundles = bundles
        self.obs = obs
        self.parts = parts
        self.buf = bytearray(512)

    def updater(self):
        return U.Updater(self.root, self.key, "sim", None, 1800, 2, self.keypath, BUILTIN)

    def _copy(self, src, dst):
        mv = memoryview(self.buf)
        with open(src, "rb") as f:
            while True:
                n = f.readinto(self.buf)
                if not n:
                    return
                dst.write(mv[:n])

    def push(self, u, name):
        """The console's `ota SIZE SHA256`: received through statefile's .new and commit, then installed."""
        src = self.bundles[name]
        path = u.incoming(os.stat(src)[6])
        f = statefile.begin(path, "wb")
        self._copy(src, f)
        f.close()
        statefile.commit(path)
        try:
            man = u.install_file(path)
            self.obs["switched"] = True
            return man
        finally:
            u.discard(path)

    def fetch(self, u, name, version):
        """The fetcher: downloaded into the incoming file, left for the check at the boot."""
        src = self.bundles[name]
        path = u.incoming(os.stat(src)[6])
        with open(path, "wb") as f:
            self._copy(src, f)
        u.defer(path, version)

    def note_switch(self):
        """After the check at boot: a pointer with a version is a switch (the fetcher's path)."""
        p = slots.read_pointer(self.root)
        if p is not None and p.get("version") is not None:
            self.obs["switched"] = True

    def prove(self, slot, label):
        """None if the slot proves to be what the vendor signed and holds `label`; else why not."""
        try:
            if self.parts is None:
                v = proof.prove(self.root, self.key, slot)
            else:
                v = proof.prove(self.root, self.key, slot, self.parts())
        except U.OtaError as e:
            return "slot %s does not prove signed: %s" % (slot, e)
        if v != label:
            return "slot %s holds %s, the pointer says %s" % (slot, v, label)
        return None

    def pointer_error(self, p, builtin_error):
        """What is wrong with the pointer p a cut left, or None: it is not lost after a switch; a trial has
        a confirmed version to return to (another slot that proves, or the built-in package, which
        builtin_error(p) checks); a confirmed version was really confirmed."""
        obs = self.obs
        known = [None] + obs["confirmed"] + [obs["confirming"]]
        if p is None:
            if obs["switched"]:
                return "the pointer is lost: the built-in runs, not what was installed and confirmed"
            return None
        if p.get("state") != "trial":
            if p.get("version") not in known:
                return "confirmed %s, which was never confirmed" % p.get("version")
            return None
        prev = p.get("previous") or ""
        if prev == p["active"]:
            return "the trial in %s returns to its own slot" % prev
        if p.get("previous_version") not in known:
            return "the trial returns to %s, never confirmed" % p.get("previous_version")
        if prev:
            err = self.prove(prev, p.get("previous_version"))
            return "no confirmed version to return to: " + err if err else None
        return builtin_error(p)

    def goes_on(self, u, check_running):
        """The gateway goes on after the cut: whatever is on trial runs out (check_running(after) then
        checks what runs), then a new bundle (4.0.0) installs with u and boots on trial."""
        p = slots.read_pointer(self.root)
        if p is not None and p.get("state") == "trial":
            p["boots"] = p.get("max_boots", 2)
            slots.write_pointer(self.root, p)
            err = check_running("after the rollback")
            if err:
                return err
        if u is None:  # an updater of what runs now, as the application makes it at boot
            u = self.updater()
            p = slots.read_pointer(self.root)
            if p is not None and p.get("state") != "trial" and p.get("version"):
                u.running = p["version"]
        self.push(u, "4.0.0")
        err = check_running("after a new install")
        if err:
            return err
        p = slots.read_pointer(self.root)
        if (p["version"], p["state"]) != ("4.0.0", "trial"):
            return "a new install after the cut runs %s (%s)" % (p["version"], p["state"])
        return None
