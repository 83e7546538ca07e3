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
import shutil
import subprocess
import tempfile
from pathlib import Path

# Noto Sans CJK from Debian's fonts-noto-cjk; in the .ttc collection face 2 is Simplified Chinese.
FONT_CANDIDATES = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                   "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf")
SC_FACE = 2
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
STAT_TYPE = {0: "实时 real-time", 1: "日 day", 2: "月 month", 3: "年 year"}
SCOPE = {1: "全厂 whole plant", 2: "工序 process", 3: "工序单元 process unit", 4: "重点设备 equipment"}


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
        return "", ("本机没有中文字体，报告使用阅读者系统的字体 / no CJK font on the machine that wrote this "
                    "report: the reader's own fonts are used")
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
    return css, "字体 font: %s（子集 subset）" % os.path.basename(path)


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


def _th(zh: str, en: str) -> str:
    return "%s <span class=en>%s</span>" % (zh, en)


def body_html(state: dict, entry: dict) -> str:
    r = state["results"]
    found, meters, items = r["find"], r["identify"], r["codes"]
    fv = r.get("first_values") or {}
    st = fv.get("status") or {}
    cfg = json.loads(Path(r["config"]["path"]).read_text())
    ent = cfg["enterprise"]
    out = ["<h1>重点用能单位能耗在线监测 网关调试报告</h1>",
           "<div class=en>Commissioning report: energy-consumption online monitoring gateway</div>"]
    out.append("<h2>%s</h2>" % _th("网关与重点用能单位", "Gateway and enterprise"))
    out.append(_table([_th("项目", "field"), _th("内容", "value")], [
        ["重点用能单位 统一社会信用代码 / enterprise credit code", ent.get("code")],
        ["行政区划 / region", ent.get("region")],
        ["站点 / site", cfg["site"].get("name")],
        ["网关编号 / gateway", cfg["site"].get("gateway")],
        ["USB 序列号 / USB serial", found.get("usb_serial")],
        ["MAC", found.get("mac")],
        ["板型 / board", st.get("board") or found.get("board")],
        ["固件版本 / firmware", st.get("firmware")],
        ["网关标识 / gateway id", st.get("gateway_id")],
    ]))
    out.append("<h2>%s</h2>" % _th("发现的仪表", "Meters found"))
    mv = fv.get("meter_values") or {}
    out.append(_table([_th("仪表", "meter"), _th("总线", "bus"), _th("地址", "address"), _th("协议", "protocol"),
                       _th("型号", "profile"), _th("识别依据", "identified by"), _th("当前读数", "reading")],
                      [[m["id"], m["bus"], m["address"], m["protocol"], m["profile"], m.get("identified_by"),
                        " ".join("%s=%s" % kv for kv in sorted((mv.get(m["id"]) or {}).items()))] for m in meters]))
    out.append("<h2>%s</h2>" % _th("数据采集项与编码", "Data-collection items and codes"))
    out.append(_table([_th("数据采集项编码", "code"), _th("名称", "name"), _th("统计范围", "scope"),
                       _th("仪表.测点", "meter.point"), _th("单位", "unit")],
                      [[i["code"], i["name"], SCOPE.get(i["scope"], i["scope"]), "%s.%s" % (i["meter"], i["point"]),
                        i.get("unit")] for i in items]))
    out.append("<h2>%s</h2>" % _th("平台接收的首个数据", "First values accepted by the platform"))
    first = fv.get("platform_first") or {}
    if first:
        out.append(_table([_th("数据采集项编码", "code"), _th("统计类型", "stat type"), _th("统计时间", "stat date"),
                           _th("数值", "value"), _th("有效", "valid")],
                          [[c, STAT_TYPE.get(v.get("stat_type"), v.get("stat_type")), v.get("stat_date"),
                            v.get("value"), v.get("valid")] for c, v in sorted(first.items())]))
    dests = st.get("destinations") or []
    out.append(_table([_th("上传目的地", "destination"), _th("最近接收", "last accepted"), _th("积压", "backlog"),
                       _th("最近错误", "last error")],
                      [[d.get("name"), _when(d.get("last_ok")), d.get("backlog"), d.get("last_error")]
                       for d in dests]))
    out.append("<h2>%s</h2>" % _th("链路与信号", "Link and signal"))
    links = st.get("links") or []
    out.append(_table([_th("链路", "link"), _th("状态", "state")],
                      [[lk.get("link") or lk.get("name"), " ".join("%s=%s" % kv for kv in sorted(lk.items())
                                                                     if kv[0] not in ("link", "name"))]
                       for lk in links] or [["-", "没有链路信息 / no link status"]]))
    out.append("<h2>%s</h2>" % _th("被拒绝的内容与原因", "What was refused, and why"))
    refused = state.get("refused") or []
    alarms = st.get("alarms") or []
    out.append(_table([_th("步骤", "stage"), _th("内容", "what"), _th("原因", "why")],
                      [[x["stage"], x["what"], "%s / %s" % (x["why_zh"], x["why"])] for x in refused]
                      + [["告警 alarm", a, ""] for a in alarms] or [["-", "无 / none", ""]]))
    out.append("<h2>%s</h2>" % _th("运维台账", "Ledger"))
    out.append("<p>本报告即网关运维台账第一条记录（%s，序号 %s）。 <span class=en>This report is the first entry of "
               "the gateway's maintenance ledger (event %s, seq %s).</span></p>" % (
                   _e(entry.get("kind")), _e(entry.get("seq")), _e(entry.get("kind")), _e(entry.get("seq"))))
    return "\n".join(out)


def chromium() -> str | None:
    for p in CHROMIUM:
        if os.path.exists(p):
            return p
    return shutil.which("chromium")


def print_pdf(html_path: Path, pdf_path: Path, timeout: float = 120) -> str | None:
    """Print `html_path` to `pdf_path` with headless Chromium; None if done, else why not."""
    exe = chromium()
    if not exe:
        return "no Chromium on this machine (install Debian's chromium): the HTML report stands alone"
    with tempfile.TemporaryDirectory(prefix="nj-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, "--user-data-dir=" + profile, "--no-pdf-header-footer",
               "--print-to-pdf=" + str(pdf_path), html_path.resolve().as_uri()]
        try:
            subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.SubprocessError) as e:
            return "Chromium failed: %s" % e
    return None if pdf_path.exists() and pdf_path.stat().st_size > 0 else "Chromium wrote no PDF"


def write(work: Path, state: dict, entry: dict) -> dict:
    """report.html and report.pdf in `work`; returns their paths and the ledger entry."""
    body = body_html(state, entry)
    css, font_note = font_face(body + "网关调试报告字体子集本机没有中文")
    doc = ("<!DOCTYPE html><html lang=zh-CN><head><meta charset=utf-8><title>网关调试报告 Commissioning report"
           "</title><style>%s%s</style></head><body>%s<p class=note>%s</p></body></html>"
           % (css, CSS, body, _e(font_note)))
    html_path = work / "report.html"
    html_path.write_text(doc, encoding="utf-8")
    pdf_path = work / "report.pdf"
    why = print_pdf(html_path, pdf_path)
    return {"html": str(html_path), "pdf": None if why else str(pdf_path), "pdf_problem": why,
            "font": font_note, "ledger": entry}
