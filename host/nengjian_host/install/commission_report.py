"""The commissioning report: one self-contained HTML file (inline CSS, the CJK glyphs it uses embedded
as a font subset) and its PDF, printed by headless Chromium.

Owns the report's content and layout, Chinese first with English beside it, in the regulation's
terms (重点用能单位, 数据采集项, 统计类型): the gateway's identity and firmware, the meters found with
profile and address, the items and their codes, the first values the platform accepted, link and
signal, and what was refused and why. The input is the commissioning state (install.commission).
"""

from __future__ import annotations

import base64
import glob
import html
import io
import json
import os
import re
import subprocess
from pathlib import Path

from nengjian_host.common.messages import MESSAGES, both

# Noto Sans CJK from Debian's fonts-noto-cjk; in the .ttc collection face 2 is Simplified Chinese.
FONT_CANDIDATES = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                   "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf")
SC_FACE = 2


def _kind(prefix: str, value) -> str:
    """A statistic type or a scope as the report writes it ("实时 real-time"), or the value as it came."""
    key = "report.%s.%s" % (prefix, value)
    return "%s %s" % tuple(reversed(both(key))) if key in MESSAGES else value


def find_cjk_font() -> tuple[str, int] | None:
    """(path, face number) of a Simplified Chinese font on this machine, or None."""
    for p in FONT_CANDIDATES:
        if os.path.exists(p):
            return p, (SC_FACE if p.endswith(".ttc") else 0)
    try:
        out = subprocess.run(["fc-list", ":lang=zh-cn", "file"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        p = line.split(":")[0].strip()
        if p and os.path.exists(p):
            return p, 0
    for p in glob.glob("/usr/share/fonts/**/*CJK*", recursive=True):
        return p, SC_FACE if p.endswith(".ttc") else 0
    return None


def font_face(text: str) -> tuple[str, str]:
    """(@font-face CSS embedding the glyphs of `text`, a note for the report: which font, or that none)."""
    found = find_cjk_font()
    if not found:
        return "", _both("report.commission.no_font")
    path, face = found
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(path, fontNumber=face, lazy=False)
    opts = subset.Options()
    opts.layout_features = ["*"]
    opts.name_IDs = ["*"]
    sub = subset.Subsetter(opts)
    sub.populate(text="".join(sorted(set(text))))
    sub.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    data = base64.b64encode(buf.getvalue()).decode()
    css = ("@font-face{font-family:'NJ CJK';src:url(data:font/otf;base64,%s) format('opentype');}" % data)
    return css, _both("report.commission.font", name=os.path.basename(path))


CSS = """
body{font-family:'NJ CJK','Noto Sans CJK SC',sans-serif;margin:24px;color:#111;font-size:13px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:15px;margin:18px 0 6px;border-bottom:1px solid #999}
table{border-collapse:collapse;width:100%} th,td{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eee} .en{color:#555;font-size:11px} .bad{color:#a00} .note{color:#666;font-size:11px}
"""


def _when(ts) -> str:
    """A gateway timestamp (UTC seconds) as China Standard Time, as the platform shows it."""
    import datetime as dt

    if not ts:
        return "-"
    return (dt.datetime.fromtimestamp(int(ts), dt.timezone(dt.timedelta(hours=8)))
            .strftime("%Y-%m-%d %H:%M:%S"))


def _e(v) -> str:
    return html.escape("" if v is None else str(v))


def _table(head: list[str], rows: list[list]) -> str:
    h = "".join("<th>%s</th>" % x for x in head)
    body = "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % _e(c) for c in r) for r in rows)
    return "<table><tr>%s</tr>%s</table>" % (h, body)


def _th(key: str, **kw) -> str:
    """A heading: the catalogue's Chinese, the English beside it, smaller."""
    en, zh = both(key, **kw)
    return "%s <span class=en>%s</span>" % (html.escape(zh), html.escape(en))


def _pair(zh: str | None, en: str, sep: str = " / ") -> str:
    """Chinese, then the English (once, where the two are the same or there is no Chinese)."""
    return en if not zh or zh == en else zh + sep + en


def _both(key: str, **kw) -> str:
    """A cell or a note: "中文 / English" (a table cell is escaped where it is written)."""
    en, zh = both(key, **kw)
    return "%s / %s" % (zh, en)


def _identified(how: str | None) -> str:
    """How a meter was identified ("answer", or "scan reply (REPLY)" with the meter's own reply), as a
    cell: Chinese / English."""
    from nengjian_host.common import siteconfig

    if how == "answer":
        return _both("report.commission.by_answer")
    m = re.fullmatch(r"scan reply \((.*)\)", how or "", re.S)
    if m is None:
        return how or "-"
    reply = siteconfig.said_back(m.group(1), "scanreply.")
    return "%s / %s" % (MESSAGES["report.commission.by_reply"][1].format(reply=reply.zh),
                        MESSAGES["report.commission.by_reply"][0].format(reply=reply))


def body_html(state: dict, entry: dict) -> str:
    r = state["results"]
    found, meters, items = r["find"], r["identify"], r["codes"]
    fv = r.get("first_values") or {}
    st = fv.get("status") or {}
    cfg = json.loads(Path(r["config"]["path"]).read_text())
    ent = cfg["enterprise"]
    title_en, title_zh = both("report.commission.h1")
    out = ["<h1>%s</h1>" % html.escape(title_zh), "<div class=en>%s</div>" % html.escape(title_en)]
    out.append("<h2>%s</h2>" % _th("report.commission.gateway_and_enterprise"))
    out.append(_table([_th("report.commission.field"), _th("report.commission.value")], [
        [_both("report.commission.enterprise_credit_code"), ent.get("code")],
        [_both("report.commission.region"), ent.get("region")],
        [_both("report.commission.site"), cfg["site"].get("name")],
        [_both("report.commission.gateway"), cfg["site"].get("gateway")],
        [_both("report.commission.usb_serial"), found.get("usb_serial")],
        ["MAC", found.get("mac")],
        [_both("report.commission.board"), st.get("board") or found.get("board")],
        [_both("report.commission.firmware"), st.get("firmware")],
        [_both("report.commission.gateway_id"), st.get("gateway_id")],
    ]))
    out.append("<h2>%s</h2>" % _th("report.commission.meters_found"))
    mv = fv.get("meter_values") or {}
    out.append(_table([_th("report.commission.meter"), _th("report.commission.bus"), _th("report.commission.address"), _th("report.commission.protocol"),
                       _th("report.commission.profile"), _th("report.commission.identified_by"), _th("report.commission.reading")],
                      [[m["id"], m["bus"], m["address"], m["protocol"], m["profile"], _identified(m.get("identified_by")),
                        " ".join("%s=%s" % kv for kv in sorted((mv.get(m["id"]) or {}).items()))] for m in meters]))
    out.append("<h2>%s</h2>" % _th("report.commission.data_collection_items_and_codes"))
    out.append(_table([_th("report.commission.code"), _th("report.commission.name"), _th("report.commission.scope"),
                       _th("report.commission.meter_point"), _th("report.commission.unit")],
                      [[i["code"], i["name"], _kind("scope", i["scope"]), "%s.%s" % (i["meter"], i["point"]),
                        i.get("unit")] for i in items]))
    out.append("<h2>%s</h2>" % _th("report.commission.first_values_accepted_by_the_platform"))
    first = fv.get("platform_first") or {}
    if first:
        out.append(_table([_th("report.commission.code"), _th("report.commission.stat_type"), _th("report.commission.stat_date"),
                           _th("report.commission.value_2"), _th("report.commission.valid")],
                          [[c, _kind("stat_type", v.get("stat_type")), v.get("stat_date"),
                            v.get("value"), v.get("valid")] for c, v in sorted(first.items())]))
    dests = st.get("destinations") or []
    out.append(_table([_th("report.commission.destination"), _th("report.commission.last_accepted"), _th("report.commission.backlog"),
                       _th("report.commission.last_error")],
                      [[d.get("name"), _when(d.get("last_ok")), d.get("backlog"), d.get("last_error")]
                       for d in dests]))
    out.append("<h2>%s</h2>" % _th("report.commission.link_and_signal"))
    links = st.get("links") or []
    out.append(_table([_th("report.commission.link"), _th("report.commission.state")],
                      [[lk.get("link") or lk.get("name"), " ".join("%s=%s" % kv for kv in sorted(lk.items())
                                                                     if kv[0] not in ("link", "name"))]
                       for lk in links] or [["-", _both("report.commission.no_links")]]))
    out.append("<h2>%s</h2>" % _th("report.commission.what_was_refused_and_why"))
    refused = state.get("refused") or []
    alarms = st.get("alarms") or []
    out.append(_table([_th("report.commission.stage"), _th("report.commission.what"), _th("report.commission.why")],
                      [[x["stage"], _pair(x.get("what_zh"), x["what"]), _pair(x["why_zh"], x["why"])]
                       for x in refused]
                      + [[_pair(*reversed(both("report.commission.alarm")), sep=" "), a, ""] for a in alarms] or [["-", _both("report.commission.none"), ""]]))
    out.append("<h2>%s</h2>" % _th("report.commission.ledger"))
    out.append("<p>%s</p>" % _th("report.commission.ledger_note", kind=entry.get("kind"), seq=entry.get("seq")))
    return "\n".join(out)


def print_pdf(html_path: Path, pdf_path: Path, timeout: float = 120) -> str | None:
    """Print `html_path` to `pdf_path` (common.pdf); None if done, else why not."""
    from nengjian_host.common import pdf

    try:
        pdf.print_pdf(html_path, pdf_path, timeout)
    except pdf.PdfError as e:
        return str(e)
    return None


def write(work: Path, state: dict, entry: dict) -> dict:
    """report.html and report.pdf in `work`; returns their paths and the ledger entry."""
    body = body_html(state, entry)
    # the glyphs of the title and of either font note travel with the report too
    css, font_note = font_face(body + "".join(MESSAGES[k][1] for k in (
        "report.commission.title", "report.commission.font", "report.commission.no_font")))
    title_en, title_zh = both("report.commission.title")
    doc = ("<!DOCTYPE html><html lang=zh-CN><head><meta charset=utf-8><title>%s %s"
           "</title><style>%s%s</style></head><body>%s<p class=note>%s</p></body></html>"
           % (_e(title_zh), _e(title_en), css, CSS, body, _e(font_note)))
    html_path = work / "report.html"
    html_path.write_text(doc, encoding="utf-8")
    pdf_path = work / "report.pdf"
    why = print_pdf(html_path, pdf_path)
    return {"html": str(html_path), "pdf": None if why else str(pdf_path), "pdf_problem": why,
            "font": font_note, "ledger": entry}
