"""The console's `ota` install step (firmware/nengjian/console/commands.py) when the running gateway's heap
is too fragmented for the signature check: the bundle is left for the check at the reset
(nengjian.ota.install_pending), the crew is told so, and nothing is lost. CPython with stand-ins;
tests/e2e/test_ota_sim.py pushes real bundles to the sim board."""

from nengjian import ota
from nengjian.console import commands as consolecmd
from nengjian.ota import updater as otaupdater


class Con:
    def __init__(self, gw):
        self.gw = gw
        self.answers, self.failures = [], []

    def answer(self, rid, doc, end):
        self.answers.append(doc)

    def fail(self, rid, text):
        self.failures.append(text)


class Store:
    flushed = 0

    def flush(self):
        self.flushed += 1


class Updater:
    def __init__(self, error, defer_error=None):
        self.error, self.defer_error = error, defer_error
        self.deferred = []

    def install_file(self, path):
        raise self.error

    def defer(self, path, version=None):
        if self.defer_error is not None:
            raise self.defer_error
        self.deferred.append(path)

    discard = otaupdater.Updater.discard  # the real one: the updater removes its own incoming file


class Resident:
    """gw.updater (nengjian.ota.resident): load() gives the job's updater; a bundle it cannot check is
    deferred and discarded through the resident."""

    def __init__(self, updater):
        self.up = updater
        self.dropped = 0

    def load(self):
        return self.up

    def drop(self):
        self.dropped += 1

    def defer(self, path, version=None):
        return self.up.defer(path, version)

    def discard(self, path):
        return otaupdater.Updater.discard(self.up, path)


class Gw:
    def __init__(self, updater):
        self.updater, self.store = Resident(updater), Store()


def _bundle(tmp_path):
    path = tmp_path / "incoming.njota"
    path.write_bytes(b"NJOTA1\n\x00" + b"\x00" * 100)
    return path


def test_out_of_memory_defers_the_check_to_the_reset(tmp_path):
    path = _bundle(tmp_path)
    con = Con(Gw(Updater(MemoryError("memory allocation failed, allocating 770 bytes"))))
    consolecmd._ota_install(con, 1, str(path))
    assert con.answers == [{"deferred": True, "applies": "checked and installed at the reset"}]
    assert con.gw.updater.up.deferred == [str(path)] and path.exists()  # kept for the check at boot
    assert con.gw.store.flushed == 1 and not con.failures


def test_out_of_memory_and_no_way_to_defer_is_a_clear_failure(tmp_path):
    path = _bundle(tmp_path)
    con = Con(Gw(Updater(MemoryError("x"), defer_error=OSError(28, "ENOSPC"))))
    consolecmd._ota_install(con, 1, str(path))
    assert not con.answers and "out of memory to check it" in con.failures[0]
    assert not path.exists()


def test_a_refused_bundle_is_removed_and_the_reason_given(tmp_path):
    path = _bundle(tmp_path)
    con = Con(Gw(Updater(ota.OtaError("signature does not verify with vendor key v"))))
    consolecmd._ota_install(con, 1, str(path))
    assert con.failures == ["update refused: signature does not verify with vendor key v"]
    assert not path.exists() and con.gw.store.flushed == 1


def _on_trial(tmp_path):
    root = tmp_path / "app"
    root.mkdir()
    ota.write_pointer(str(root), {"active": "b", "version": "2.0.0", "previous": "a", "previous_version": "1.0.0",
                                  "state": "trial", "boots": 1, "max_boots": 2, "min_version": "1.0.0"})
    return otaupdater.Updater(str(root), (3, 65537, 1, ""), "sim", running="2.0.0")


def test_a_push_while_a_version_is_on_trial_is_refused_before_a_byte_arrives(tmp_path):
    up = _on_trial(tmp_path)
    con = Con(Gw(up))
    consolecmd._ota(con, 1, ["5000", "0" * 64])
    assert len(con.failures) == 1 and not con.answers
    assert con.failures[0].startswith("update refused: version 2.0.0 is on trial (boot 1 of 2): ")
    assert "no confirmed version to return to" in con.failures[0]
    assert sorted(p.name for p in (tmp_path / "app").iterdir()) == [ota.POINTER]  # nothing received


def test_the_update_state_says_the_minimum_version(tmp_path):
    con = Con(Gw(_on_trial(tmp_path)))
    con.version = "2.0.0"
    consolecmd._ota(con, 1, [])
    st = con.answers[0]
    assert (st["state"], st["version"], st["previous_version"], st["min_version"]) == (
        "trial", "2.0.0", "1.0.0", "1.0.0")
