"""The status page in a real browser: the sim gateway serves it (nengjian.console.page), headless Chromium
(Debian's package) opens it, takes a screenshot and gives the DOM, and what the page shows is checked
against the console's status: meter ids, data-item codes and their last values, backlog and last
acceptance per destination. NJ_UPDATE_DOC_IMAGES=1 also writes the screenshot to docs/images."""

from __future__ import annotations

import socket
import urllib.request
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from browser import chromium, refresh_doc_image, screenshot

pytestmark = [pytest.mark.e2e]


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Rows(HTMLParser):
    """The page's data rows: {("meter"|"item"|"dest", key): {cell class: text}}; meter values by point."""

    def __init__(self):
        super().__init__()
        self.rows: dict = {}
        self.points: dict = {}
        self._row = None
        self._cell = None
        self._point = None
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr":
            for kind in ("meter", "item", "dest"):
                if "data-" + kind in a:
                    self._row = (kind, a["data-" + kind])
                    self.rows[self._row] = {}
        elif tag == "td" and self._row is not None:
            self._cell = a.get("class", "")
            self.rows[self._row][self._cell] = ""
        elif tag == "span" and "data-point" in a and self._row is not None:
            self._point = a["data-point"]

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None
        elif tag == "td":
            self._cell = None
        elif tag == "span":
            self._point = None

    def handle_data(self, data):
        self.text.append(data)
        if self._row is not None and self._cell is not None:
            self.rows[self._row][self._cell] += data
        if self._point is not None:
            self.points[(self._row[1], self._point)] = data.split("=", 1)[1]


# What the page costs the heap is bench_heap's figure (page 10 KB resident, its renderer 10 KB more while
# someone looks, on the sim); this test is about what the page shows, with room to spare for that.
@pytest.mark.sim_heap("384k")
def test_the_status_page_in_a_browser_shows_what_the_console_shows(dut, platform, tmp_path):
    if dut.kind != "sim":
        pytest.skip("the page's address on a bench gateway is the rig's business")
    port = _free_port()
    dut.gateway.extra_env["NJ_STATUS_PORT"] = str(port)
    cfg = dut.site()
    cfg["network"] = {"apn": "cmnet", "pin": "8642"}
    dut.start(cfg)
    dut.expect(r"status page on http://127\.0\.0\.1:%d/" % port, timeout=60)
    dut.wait_for(lambda: dut.status()["destinations"][0]["last_ok"] > 0, timeout=90, what="a first acceptance")
    # Uploads fail from here on, so the backlog only grows and the last acceptance stays.
    platform.set_fault("http500")
    dut.wait_for(lambda: dut.status()["destinations"][0]["failing"], timeout=90, what="delivery failing")
    url = "http://127.0.0.1:%d/" % port

    before = dut.status()
    dom = chromium(tmp_path, "--dump-dom", url)
    after = dut.status()
    refresh_doc_image(screenshot(tmp_path, url, "status-page.png", 1100, 1500), "status-page.png")

    page = Rows()
    page.feed(dom)
    text = "".join(page.text)
    assert "能源计量网关状态 Gateway status" in text and "电表 Meters" in text and "数据采集项 Data items" in text
    meters = {key for kind, key in page.rows if kind == "meter"}
    assert meters == {m["id"] for m in after["meters"]}
    values_before = {m["id"]: m["values"] for m in before["meters"]}
    values_after = {m["id"]: m["values"] for m in after["meters"]}
    for (mid, point), shown in page.points.items():  # a reading between the two snapshots
        assert Decimal(values_before[mid][point]) <= Decimal(shown) <= Decimal(values_after[mid][point])
    items = {key: row for (kind, key), row in page.rows.items() if kind == "item"}
    assert set(items) == {it["code"] for it in cfg["items"]}
    for it in cfg["items"]:
        shown = items[it["code"]]
        assert shown["meter"] == it["meter"] and shown["point"] == it["point"]
        assert shown["value"] == page.points[(it["meter"], it["point"])]
    for d0, d1 in zip(before["destinations"], after["destinations"]):
        row = page.rows[("dest", d0["name"])]
        assert d0["backlog"] <= int(row["backlog"]) <= d1["backlog"]
        assert d0["last_ok"] == d1["last_ok"]
        from nengjian.core import timeutil

        assert row["last_ok"] == timeutil.cst_text(d0["last_ok"])
    # No secret of the config on the page or in its JSON.
    js = urllib.request.urlopen(url + "status.json", timeout=30).read().decode()
    for secret in ("8642",):  # the SIM PIN
        assert secret not in dom and secret not in js
    assert '"meters"' in js and '"items"' in js
