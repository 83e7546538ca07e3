"""An update over the static channel on a whole sim gateway whose running heap is fragmented (the sim
board's NJ_FRAGMENT_HEAP seam, boards/sim/simfrag.py: no free block much over 448 bytes, the figure
a gateway in the field showed): the channel's signature check finds no room, so the check is deferred
to the restart, checked there in a fresh heap, and the update then downloads in the run after it (a
whole heap, as the firmware expects of the run it restarts into), installs at the next restart, runs
on trial and is confirmed, with no restart loop, and the meters' data reaching the platform all along.
Without the check's modules loaded before the heap fragmented (as on a gateway that dropped them
after its last check), the check cannot even import its code: it restarts for a check at the start
of the run after, in a whole heap, once.

The unit-level paths (giving up when even the restart has no room) are
tests/firmware/ota/test_heap_deferral.py's."""

from __future__ import annotations

import json
import re

import pytest
from nengjian_host.common import bundle as app_bundle
from nengjian_host.sim.staticweb import StaticWeb
from nengjian_host.vendor import updates as host_ota
from otarig import BOOTED, boots_by_kind, ledger_texts, ota_cli, start, vendor_key
from simrig import cst_to_utc, values_from_console

# The heap of the static-channel test in test_ota_sim.py: the download runs beside polling and uploads.
pytestmark = [pytest.mark.e2e, pytest.mark.sim_heap("416k")]

NEW = "0.2.0-sim"
HOLE = 448  # bytes: the largest free block a gateway in the field had
# Loaded before the heap is fragmented: a check that loads them into such a heap cannot, and restarts
# before it reaches its signature check (the second test; boards/sim/simfrag.py).
CHECK_CODE = "nengjian.ota.fetch,nengjian.ota.channel,nengjian.ota.updater,nengjian.ota.proof"
FRAGMENTED = r"sim: heap fragmented \(NJ_FRAGMENT_HEAP=%d\): (\d+) bytes free, largest free block (\d+) bytes " \
             r"\(before: (\d+) free, largest (\d+)\)" % HOLE
DEFERRED = r"event\s+ota: update channel: no room in the heap for its signature check now: checked at the restart"
NO_CODE = r"event\s+ota: update check: no room in the heap to load its code now: checked after a restart"
RECEIVED = r"event\s+ota: bundle %s received: verified and installed at the restart" % re.escape(NEW)
CONFIRMED = r"event\s+ota: version %s confirmed healthy" % re.escape(NEW)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    d = tmp_path_factory.mktemp("ota-frag")
    vendor_key(d)
    march = app_bundle.load_board("sim").mpy_march
    good = host_ota.collect(mpy=True, march=march, version=NEW)
    host_ota.build(d / "good.njota", d / "vendor.pem", NEW, ["sim"], files=good, mpy=True)
    return d


def _sim_only(dut):
    # The seam that fragments the heap is the sim board's (boards/sim/simfrag.py); a bench gateway has none.
    if dut.kind != "sim":
        pytest.skip("fragmenting the heap on demand is the sim board's seam")


def _seen(app_dir):
    try:
        return json.loads((app_dir / "channel.seen").read_text())
    except FileNotFoundError:
        return None


@pytest.mark.needs("console", "reset")
def test_update_deferred_on_a_fragmented_heap_installs_after_the_restart_and_data_keeps_flowing(
        dut, platform, bundles, tmp_path):
    site = tmp_path / "www"
    code, out, err = ota_cli("publish", "--key", str(bundles / "vendor.pem"), "--bundle", str(bundles / "good.njota"),
                              "--out", str(site))
    assert code == 0, out + err
    _sim_only(dut)
    dut.gateway.extra_env["NJ_FRAGMENT_HEAP"] = "%d:%s" % (HOLE, CHECK_CODE)
    with StaticWeb(site) as server:
        builtin, app_dir = start(dut, bundles, url=server.url + "/channel.njch", check_s=60, insecure=True)
        assert builtin != NEW
        free, largest, free_before, largest_before = map(int, dut.expect(FRAGMENTED, timeout=60).groups())
        print("heap of the application run: %d B free, largest block %d B; fragmented: %d B free, largest %d B"
              % (free_before, largest_before, free, largest))
        assert largest < 768 < largest_before and free > 20000, (free, largest, free_before, largest_before)

        # (1) Deferred: no room for the channel's signature check in the running heap.
        dut.expect(DEFERRED, timeout=120)
        # The check at the restart, in a fresh heap, wrote its outcome over the fetcher's provisional
        # "gave_up"; then one more reset, so the application starts in a heap the check never touched.
        dut.expect(r"ota: update channel checked at boot: resetting into a fresh heap", timeout=60)
        seen = _seen(app_dir)
        assert seen["ok"] is True and not seen.get("gave_up"), seen

        # (2) The run after those resets starts in a whole heap (the seam fragments only the run that
        # began at power-on): it trusts the same bytes by their hash, downloads the bundle and leaves
        # it for the check at the next restart; it installs there, runs on trial and is confirmed.
        dut.expect(RECEIVED, timeout=180)
        assert dut.expect(BOOTED, timeout=60).group(1) == NEW
        dut.expect(CONFIRMED, timeout=180)
        texts = [t for k, t in ledger_texts(dut, 200) if k == "ota"]
        assert "update channel: no room in the heap for its signature check now: checked at the restart" in texts
        assert "update channel checked at boot: signed by test-vendor" in texts
        assert any(t.startswith("installed %s in slot a" % NEW) for t in texts), texts
        assert "trial boot 1 of 2: %s from slot a" % NEW in texts
        assert not any("rolled back" in t or "refused" in t or "gave up" in t for t in texts), texts
        state = dut.console().request("ota")[-1]
        assert (state["active"], state["version"], state["state"]) == ("a", NEW, "confirmed")
        assert _seen(app_dir) == seen  # nothing gave up since: the same record of the same bytes

        # No restart loop: the first run, the restart into the check at boot (which resets once more),
        # the run that downloaded, the trial. A later check of the confirmed version, in its
        # heap, reads the channel and stays.
        assert boots_by_kind(dut) == (3, 1)
        asked = server.paths.count("/channel.njch")
        dut.wait_for(lambda: server.paths.count("/channel.njch") > asked, timeout=180,
                     what="a check of the update channel after the confirm")
        assert boots_by_kind(dut) == (3, 1) and dut.status()["firmware"] == NEW
        assert len(re.findall(FRAGMENTED, dut.output())) == 1
        assert [p for p in server.paths if p != "/channel.njch"] == ["/bundles/good.njota"]

    # (3) Uploads went on: every value the gateway produced, in each of its runs, is at the platform.
    produced = {(c, d) for c, d, _v in values_from_console(dut.output())}
    assert produced

    def uploaded():
        return produced <= {(r["dataCode"], r["statDate"]) for r in platform.records()}

    dut.wait_for(uploaded, timeout=120, what="every value the gateway produced at the platform")
    # ... and the platform's realtime series have no hole, across the four boots.
    for code in {c for c, _d in produced}:
        starts = sorted(cst_to_utc(r["statDate"]) for r in platform.records() if r["dataCode"] == code
                        and r["statType"] == 0)
        holes = [(a, b) for a, b in zip(starts, starts[1:]) if b - a != dut.clock.period]
        assert starts and not holes, (code, holes, len(starts))


@pytest.mark.needs("console", "reset")
def test_a_check_that_cannot_load_its_code_on_a_fragmented_heap_restarts_once_and_the_update_installs(
        dut, platform, bundles, tmp_path):
    site = tmp_path / "www"
    code, out, err = ota_cli("publish", "--key", str(bundles / "vendor.pem"), "--bundle", str(bundles / "good.njota"),
                              "--out", str(site))
    assert code == 0, out + err
    _sim_only(dut)
    dut.gateway.extra_env["NJ_FRAGMENT_HEAP"] = "%d" % HOLE  # nothing of the check loaded before
    with StaticWeb(site) as server:
        builtin, app_dir = start(dut, bundles, url=server.url + "/channel.njch", check_s=60, insecure=True)
        assert builtin != NEW
        free, largest, _free_before, largest_before = map(int, dut.expect(FRAGMENTED, timeout=60).groups())
        assert largest < 768 < largest_before and free > 20000, (free, largest, largest_before)
        # (1) The check's own code has no room: a restart, nothing asked of the server in this run.
        dut.expect(NO_CODE, timeout=120)
        assert "/channel.njch" not in server.paths
        # (2) The run after it has a whole heap: the check loads, the channel verifies there, the
        # bundle is downloaded, installed at the next restart, on trial and confirmed.
        dut.expect(RECEIVED, timeout=180)
        assert dut.expect(BOOTED, timeout=60).group(1) == NEW
        dut.expect(CONFIRMED, timeout=180)
        texts = [t for k, t in ledger_texts(dut, 200) if k == "ota"]
        assert "update check: no room in the heap to load its code now: checked after a restart" in texts
        assert not any("rolled back" in t or "refused" in t or "gave up" in t for t in texts), texts
        state = dut.console().request("ota")[-1]
        assert (state["active"], state["version"], state["state"]) == ("a", NEW, "confirmed")
        assert _seen(app_dir) is None  # the record of that restart went once the code loaded
        # One restart for the code, one into the trial; none into a check at boot, no loop.
        assert boots_by_kind(dut) == (3, 0)
        assert "update check failed" not in dut.output()
        assert [p for p in server.paths if p != "/channel.njch"] == ["/bundles/good.njota"]
