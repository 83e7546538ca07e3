"""The status page's HTML (nengjian.console.page serves it): the console's status snapshot as one page,
Simplified Chinese first, then English; tiny inline CSS, no external resource, refreshed by the browser.

Owns: what the page shows and how. Streamed piece by piece to the server's Out: no string of the page is
built. Loaded by a request for the page and dropped by the server when nobody looks (page.HTML_UNLOAD_MS).
"""

from nengjian.core import timeutil

_secret = [(), ""]  # the keys whose values are masked, and the mask (set by html())


_ESC = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#39;"))


def esc(v):
    s = v if isinstance(v, str) else ("" if v is None else str(v))
    for a, b in _ESC:
        if a in s:
            s = s.replace(a, b)
    return s


def _when(ts):
    return timeutil.cst_text(ts) if ts else "-"


def flat(v, key=None):
    """A value as one line of text for a cell (dicts as k=v, lists joined), secrets masked."""
    if key is not None and key in _secret[0]:
        return _secret[1]
    if isinstance(v, dict):
        return ", ".join("%s=%s" % (k, flat(v[k], k)) for k in v)
    if isinstance(v, (list, tuple)):
        return ", ".join(flat(x) for x in v)
    if v is None:
        return "-"
    return str(v)


_STYLE = ("body{font-family:sans-serif;margin:1em;color:#222}h1{font-size:1.3em}h2{font-size:1.1em;"
          "margin-top:1.2em}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.2em .5em;"
          "text-align:left;vertical-align:top}th{background:#eee}.bad{color:#b00;font-weight:bold}"
          ".ok{color:#070}small{color:#666}h3{font-size:1em;margin:.6em 0 .2em}.q th{background:#f6f6f6;"
          "font-weight:normal}")


# What each alarm is (its code: nengjian.console.status), said in Chinese before the gateway's English,
# with the arguments that are words (a level, a period, a failure) in Chinese beside it; the rest stays
# in the English (the laptop's catalogue says the whole text: nengjian status). Short strings as one
# constant each (a dict of them costs some 2 KB more on the sim while the page is loaded), in the
# renderer that is loaded only while someone looks at the page.
_ALARM_ZH = ("|safe=安全模式|crash_loop=反复重启，安全模式|no_link=无网络链路|link_down=链路断开|"
             "meter_offline=电表离线|store_full=存储已满|store=存储故障|dest_failing=上传失败|"
             "quality_left_out=数据质量指标未列出|quality=数据质量|gap=数据采集项无有效数据|"
             "gap_unavailable=数据中断告警不可用|cal=检定|volume_full=数据卷将满|")


# (word, its Chinese) pairs flat: looked through without slicing a constant for each alarm
_WORDS = ("warning", "预警", "alarm", "告警", "day", "日值", "month", "月值", "no reply", "无应答",
          "incomplete reply", "应答不完整", "unreadable answer", "平台应答无法解读", "no session", "没有会话")


def _zh(code):
    """The Chinese name of an alarm's code, or None."""
    at = _ALARM_ZH.find("|%s=" % code) if code else -1
    if at < 0:
        return None
    at += len(code) + 2
    return _ALARM_ZH[at:_ALARM_ZH.find("|", at)]


def _words(text):
    """The Chinese of the words in an English text ("warning: E1 ...": 预警), as "（...）", or ""."""
    if not isinstance(text, str) or not text:
        return ""
    said = ""
    for k in range(0, len(_WORDS), 2):
        word = _WORDS[k]
        i = text.find(word)
        while i >= 0:  # the word alone, not a piece of another ("day" in "today", "days")
            end = i + len(word)
            if (i == 0 or text[i - 1] in " (") and (end == len(text) or text[end] in " :,;()"):
                said += ("，" if said else "") + _WORDS[k + 1]
                break
            i = text.find(word, end)
    return "（%s）" % said if said else ""


async def _tree(out, v, key=None, depth=0):
    """A value as nested tables (dicts and lists of them, a few levels deep), else as text; secrets masked."""
    if key is not None and key in _secret[0]:
        await out.put(esc(_secret[1]))
    elif isinstance(v, dict) and v and depth < 4:
        await out.put('<table class="q">')
        for k in v:
            await out.put("<tr><th>%s</th><td>" % esc(k))
            await _tree(out, v[k], k, depth + 1)
            await out.put("</td></tr>")
        await out.put("</table>")
    elif isinstance(v, (list, tuple)) and v and isinstance(v[0], dict) and depth < 4:
        for x in v:
            await _tree(out, x, None, depth + 1)
    else:
        await out.put(esc(flat(v, key)))


async def _row(out, cells, attrs=""):
    await out.put("<tr%s>" % attrs)
    for cls, text in cells:
        await out.put('<td class="%s">%s</td>' % (cls, esc(text)))
    await out.put("</tr>")


async def _table(out, heads):
    await out.put("<table><tr>")
    for h in heads:
        await out.put("<th>%s</th>" % h)
    await out.put("</tr>")


async def html(out, st, items, secret_keys, mask, refresh_s):
    """The page of snapshot st, streamed to out (page.Out: `await out.put(text)`); items: the data items
    with their last values ({"code", "meter", "point", "value"}); values under a key in secret_keys show
    as mask. Labels: 中文 English."""
    _secret[0] = secret_keys
    _secret[1] = mask
    site = st.get("site") or ""
    await out.put('<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
                  '<meta name="viewport" content="width=device-width,initial-scale=1">'
                  '<meta http-equiv="refresh" content="%d"><title>%s 网关状态 Gateway status</title>'
                  "<style>%s</style></head><body>" % (refresh_s, esc(site), _STYLE))
    await out.put("<h1>能源计量网关状态 Gateway status <small>%s</small></h1>" % esc(site))
    await out.put('<table id="gateway">')
    for label, key, v in (("网关编号 Gateway ID", "gateway_id", st.get("gateway_id")),
                          ("固件 Firmware", "firmware", st.get("firmware")),
                          ("板型 Board", "board", st.get("board")),
                          ("运行状态 Mode", "mode", st.get("mode")),
                          ("运行时间 Uptime (s)", "uptime_s", st.get("uptime_s")),
                          ("时间 Time (UTC+8)", "time", _when(st.get("time"))),
                          ("已读数 Readings", "readings", st.get("readings")),
                          ("空闲内存 Heap free", "heap_free", st.get("heap_free"))):
        await out.put('<tr><th>%s</th><td id="%s">%s</td></tr>' % (label, key, esc(v)))
    await out.put("</table>")

    alarms = st.get("alarms") or ()
    codes = st.get("alarm_codes") or ()
    await out.put('<h2>告警 Alarms</h2><ul id="alarms">')
    for i in range(len(alarms)):
        code = codes[i] if i < len(codes) else None
        zh = _zh(code)
        await out.put('<li class="bad" data-code="%s">%s%s</li>' % (
            esc(code), "<b>%s%s</b> " % (zh, _words(alarms[i])) if zh else "", esc(flat(alarms[i]))))
    if not alarms:
        await out.put('<li class="ok">无 None</li>')
    await out.put("</ul>")

    meters = st.get("meters") or ()
    quality = False
    for m in meters:
        quality = quality or "quality" in m
    await out.put('<h2>电表 Meters</h2><div id="meters">')
    await _table(out, ("编号 ID", "总线 Bus", "状态 State", "最近读数时间 Last reading", "读数 Values",
                       "失败 Failures", "最近错误 Last error") + (("数据质量 Quality",) if quality else ()))
    for m in meters:
        await out.put('<tr data-meter="%s"><td class="id">%s</td><td>%s</td>' % (
            esc(m.get("id")), esc(m.get("id")), esc(m.get("bus"))))
        await out.put('<td class="%s">%s</td><td>%s</td><td class="values">' % (
            "bad" if m.get("offline") else "ok", "离线 offline" if m.get("offline") else "在线 online",
            esc(_when(m.get("last_ok")))))
        values = m.get("values") or {}
        for k in values:
            await out.put('<span data-point="%s">%s=%s</span> ' % (esc(k), esc(k), esc(values[k])))
        err = m.get("last_error")
        await out.put('</td><td>%s</td><td>%s%s</td>' % (esc(m.get("failures")), _words(err), esc(flat(err))))
        if quality:
            await out.put('<td class="quality">%s</td>' % esc(flat(m.get("quality"))))
        await out.put("</tr>")
    await out.put("</table></div>")

    await out.put('<h2>数据采集项 Data items</h2><div id="items">')
    await _table(out, ("数据采集项编码 Code", "电表 Meter", "测点 Point", "最新值 Last value"))
    for it in items:
        await _row(out, (("code", it["code"]), ("meter", it["meter"]), ("point", it["point"]),
                         ("value", flat(it["value"]))), ' data-item="%s"' % esc(it["code"]))
    await out.put("</table></div>")

    await out.put('<h2>上传 Destinations</h2><div id="destinations">')
    dests = st.get("destinations") or ()
    await _table(out, ("平台 Platform", "积压 Backlog", "最近接受 Last accepted", "状态 State",
                       "最近错误 Last error"))
    for d in dests:
        await _row(out, (("name", d.get("name")), ("backlog", d.get("backlog")),
                         ("last_ok", _when(d.get("last_ok"))),
                         ("bad" if d.get("failing") else "ok", "失败 failing" if d.get("failing") else "正常 ok"),
                         ("error", _words(d.get("last_error")) + flat(d.get("last_error")))),
                   ' data-dest="%s"' % esc(d.get("name")))
    await out.put("</table></div>")

    net = st.get("network") or {}
    await out.put('<h2>网络 Network</h2><p id="network">当前链路 Active link: <b>%s</b></p>' % esc(
        net.get("active") or "-"))
    await _table(out, ("链路 Link", "类型 Kind", "状态 State", "信号 Signal", "详情 Details"))
    for link in st.get("links") or ():
        await _row(out, (("link", link.get("link", link.get("name"))), ("kind", link.get("kind")),
                         ("bad" if not link.get("up", True) else "ok", link.get("state")),
                         ("signal", flat(link.get("rssi", link.get("csq")))),
                         ("details", flat(link))))
    await out.put("</table>")

    store = st.get("store")
    if store:
        await out.put('<h2>存储 Store</h2><p id="store">记录 Records: %s, 已写入 durable: %s</p>' % (
            esc(store.get("last_seq")), esc(store.get("durable_seq"))))
    # The data-quality figures, wherever the snapshot has them (the gateway's own, per destination),
    # shown as they come: their keys are the quality module's, not this page's.
    shown = False
    for name, q in [("", st.get("quality"))] + [(d.get("name"), d.get("quality")) for d in dests]:
        if q is None:
            continue
        if not shown:
            await out.put('<h2>数据质量 Data quality</h2><div id="quality">')
            shown = True
        if name:
            await out.put('<h3 data-quality="%s">%s</h3>' % (esc(name), esc(name)))
        await _tree(out, q)
    if shown:
        await out.put("</div>")
    await out.put("<p><small>每 %d 秒刷新 Refreshes every %d s &middot; "
                  '<a href="/status.json">status.json</a></small></p></body></html>' % (refresh_s, refresh_s))
