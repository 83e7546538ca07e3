"""`nengjian status`: a connected gateway's state, as the console's `status` answer says it, for a
person (rich tables) or a script (JSON).

Owns: asking the gateway (fetch) and the human rendering; the numbers come from
nengjian/console/status.py on the gateway.
"""

from __future__ import annotations

import datetime as dt

from nengjian_host.common import gatewaytext
from nengjian_host.common.messages import MESSAGES, get_lang
from nengjian_host.common.messages import t as tr

CST = dt.timezone(dt.timedelta(hours=8), "CST")


def when(ts: int | None, now: int | None = None) -> str:
    if not ts:
        return tr("out.status.never")
    text = dt.datetime.fromtimestamp(ts, CST).strftime("%Y-%m-%d %H:%M:%S")
    if now:
        ago = now - ts
        if ago >= 0:
            text += tr("out.status.ago", duration=duration(ago))
    return text


def duration(s: float) -> str:
    s = int(s)
    if s < 120:
        return tr("out.status.dur.s", n=s)
    if s < 7200:
        return tr("out.status.dur.min", n=s // 60)
    if s < 2 * 86400:
        return tr("out.status.dur.h", n=s / 3600)
    return tr("out.status.dur.d", n=s / 86400)


def size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (n, unit)
        n /= 1024
    return str(n)


def _columns(t, prefix: str, names, **kw) -> None:
    for name in names:
        t.add_column(tr("%s.%s" % (prefix, name)), **kw)


def render(st: dict, port: str = "", console=None) -> None:
    """Print a status answer with rich, in the chosen language: headline, alarms, meters, destinations,
    links, resources. The gateway's alarms are said from their codes (gatewaytext); what it writes without
    one (a meter's or destination's last error, a link's fields) stays its English."""
    from rich.console import Console as RichConsole
    from rich.markup import escape
    from rich.table import Table

    c = console or RichConsole()
    now = st.get("time")
    mode = st.get("mode", "?")
    colour = {"run": "green", "safe": "red"}.get(mode, "yellow")
    mode_key = "out.status.mode." + str(mode)
    c.print("[bold]%s[/bold]  %s  %s" % (
        escape(tr("out.status.gateway", id=st.get("gateway_id"))),
        escape(tr("out.status.firmware", firmware=st.get("firmware"), board=st.get("board"))),
        escape(tr("out.status.via", port=port)) if port else ""))
    c.print("%s [%s]%s[/%s]   %s   %s" % (
        tr("out.status.mode"), colour, escape(tr(mode_key) if mode_key in MESSAGES else str(mode)), colour,
        escape(tr("out.status.up", duration=duration(st.get("uptime_s", 0)))),
        escape(tr("out.status.clock", when=when(now)))))
    if st.get("site"):
        c.print(escape(tr("out.status.site", site=st["site"])))
    alarms = gatewaytext.alarms(st)
    if alarms:
        zh = get_lang() == "zh"
        for a in alarms:
            c.print("[bold red]%s[/bold red] %s" % (escape(tr("out.status.alarm")), escape(a.zh if zh else str(a))))
    else:
        c.print("[green]%s[/green]" % escape(tr("out.status.no_alarms")))

    if st.get("meters"):
        t = Table(title=tr("out.status.meters"), title_justify="left")
        _columns(t, "out.status.meters", ("meter", "bus", "state", "last_reading", "values", "polls", "last_error"),
                 overflow="fold")
        for m in st["meters"]:
            stats = m.get("stats") or {}
            state = "[red]%s[/red]" % tr("out.status.offline") if m.get("offline") else (
                "[yellow]%s[/yellow]" % tr("out.status.failures", n=m["failures"]) if m.get("failures") else
                "[green]%s[/green]" % tr("out.status.ok"))
            vals = " ".join("%s=%s" % kv for kv in (m.get("values") or {}).items())
            refused = m.get("unsupported") or {}
            if refused:  # points the meter refuses: left out of the values, asked again now and then
                vals += (" " if vals else "") + "[yellow]%s[/yellow]" % tr("out.status.unsupported",
                                                                           points=", ".join(sorted(refused)))
            t.add_row(m["id"], m.get("bus", ""), state, when(m.get("last_ok"), now), vals,
                      "%s/%s" % (stats.get("ok", "?"), stats.get("failed", "?")), gatewaytext.last_error(m))
        c.print(t)
    kept = [m for m in st.get("meters") or () if m.get("memory")]
    if kept:
        c.print(memory_table(kept, now))
    if st.get("destinations"):
        t = Table(title=tr("out.status.destinations"), title_justify="left")
        _columns(t, "out.status.destinations", ("destination", "state", "backlog", "last_upload", "sent",
                                                "last_error"))
        for d in st["destinations"]:
            state = "[red]%s[/red]" % tr("out.status.failing") if d.get("failing") else \
                "[green]%s[/green]" % tr("out.status.ok")
            t.add_row(d["name"], state, str(d.get("backlog", "?")), when(d.get("last_ok"), now),
                      str((d.get("stats") or {}).get("sent", "?")), gatewaytext.last_error(d))
        c.print(t)
    scored = [d for d in st.get("destinations") or () if d.get("quality")]
    if scored:
        c.print(quality_table(scored))
    if st.get("links"):
        t = Table(title=tr("out.status.links"), title_justify="left")
        _columns(t, "out.status.links", ("link", "state", "details"))
        active = (st.get("network") or {}).get("active")
        for link in st["links"]:
            up = link.get("up")
            state = "[green]%s[/green]" % tr("out.status.link_up") if up else (
                "[red]%s[/red]" % tr("out.status.link_down") if up is False else str(link.get("state", "?")))
            if active and (link.get("link") or link.get("name")) == active:
                state += tr("out.status.carries")
            rest = ", ".join("%s=%s" % (k, v) for k, v in link.items()
                             if k not in ("link", "name", "up", "state", "modem", "ifconfig") and v != "")
            if link.get("ifconfig"):
                rest += ", ip=%s" % link["ifconfig"][0]
            t.add_row(str(link.get("link") or link.get("name")), state, rest)
        c.print(t)
        for link in st["links"]:
            if link.get("modem"):
                c.print(modem_table(str(link.get("link") or link.get("name")), link["modem"]))
    store = st.get("store") or {}
    flash = st.get("flash") or {}
    parts = []
    if store:
        parts.append(tr("out.status.store", last=store.get("last_seq"), durable=store.get("durable_seq")))
    if flash:
        parts.append(tr("out.status.volume", free=size(flash.get("free")), size=size(flash.get("size"))))
    heap = tr("out.status.heap", free=size(st.get("heap_free")))
    if st.get("heap_max_free") is not None:  # firmware that measures fragmentation (console status)
        heap += tr("out.status.heap_block", block=size(st.get("heap_max_free")))
    parts.append(heap)
    if st.get("last_upload") is not None:
        parts.append(tr("out.status.last_upload", when=when(st.get("last_upload"), now)))
    c.print(escape("   ".join(parts)))
    if mode == "safe" and st.get("safe_reason"):
        lines = safe_texts(st)
        zh = get_lang() == "zh"
        for first in (True, False):  # the chosen language, then the other one for the vendor's support
            for i, line in enumerate(lines):
                text = escape(line.zh if zh == first else str(line))
                c.print(("[red]%s[/red]" % text if first else "[dim]%s[/dim]" % text) if i == 0 else text)


def safe_texts(st: dict) -> list:
    """Why the gateway is in safe mode, line by line, each a messages.Text (its English and, beside it,
    its Chinese): from the status's "safe" (the config's problems with their codes, or the data
    volume's error), else, from a gateway that gives no codes, its English reason."""
    from types import SimpleNamespace

    from nengjian_host.common import messages, siteconfig

    why = st.get("safe") if isinstance(st.get("safe"), dict) else {}
    if why.get("code") == "config":
        found = siteconfig.from_gateway(SimpleNamespace(problems=list(why.get("problems") or ()),
                                                        codes=list(why.get("codes") or ())))
        lines = [messages.msg("out.status.safe.config")]
        lines += [messages.Text("  " + p, "  " + p.zh) for p in found]
        if why.get("more"):
            lines.append(messages.msg("out.status.safe.more", count=why["more"]))
        return lines
    if why.get("code") == "volume":
        return [messages.msg("out.status.safe.volume", reason=(why.get("args") or ["?"])[0])]
    return [messages.msg("out.status.safe.other", reason=st.get("safe_reason") or "?")]


def memory_table(meters: list[dict], now: int | None):
    """Per meter with memory work (firmware nengjian.meters.memwatch): refills from its frozen data, the
    last clock reading's offset and the day its clock was last set."""
    from rich.table import Table

    from nengjian_host.common.messages import t as tr

    never = tr("out.status.never")
    t = Table(title=tr("out.status.memory"), title_justify="left")
    for col in ("meter", "refills", "refilled_at", "offset", "checked_at", "set_day"):
        t.add_column(tr("out.status.memory." + col), overflow="fold")
    for m in meters:
        mem = m["memory"]
        off = mem.get("clock_offset_s")
        day = mem.get("clock_set_day")
        t.add_row(str(m["id"]), str(mem.get("refills", 0)),
                  when(mem["refilled_at"]) if mem.get("refilled_at") else never,
                  never if off is None else tr("out.status.memory.seconds", offset=off),
                  when(mem["clock_checked_at"]) if mem.get("clock_checked_at") else never,
                  dt.datetime.fromtimestamp(day, CST).strftime("%Y-%m-%d") if day else never)
    return t


def pct(x) -> str:
    return "-" if x is None else "%.1f %%" % x


def quality_table(dests: list[dict]):
    """The platforms' score as the gateway keeps it (nengjian/uplink/quality.py): per destination, each
    day and month kept, newest first; red where an item is below 90 % or a figure is more than 5 % apart
    from the sum of its parts. The values sent as invalid since boot, which the score does not count as
    accepted, on the destination's first row ("-" from firmware that does not count them)."""
    from rich.table import Table

    t = Table(title=tr("out.status.quality"), title_justify="left")
    _columns(t, "out.status.quality", ("destination", "period", "accepted", "completeness", "on_time", "apart",
                                       "misaligned", "invalid", "low"))
    for d in dests:
        q = d["quality"]
        invalid = "-" if q.get("invalid") is None else str(q["invalid"])
        for n, slot in enumerate(list(q.get("days") or ()) + list(q.get("months") or ())):
            low = sorted(code for code, (acc, due, _apart) in (slot.get("items") or {}).items() if acc * 10 < due * 9)
            bad = (slot.get("completeness") is not None and slot["completeness"] < 90) or (
                slot.get("apart_max") or 0) > 5
            comp = pct(slot.get("completeness"))
            t.add_row(d["name"], str(slot.get("period")), "%s/%s" % (slot.get("accepted"), slot.get("due")),
                      "[red]%s[/red]" % comp if bad else comp, pct(slot.get("timeliness")), pct(slot.get("apart_max")),
                      str(slot.get("misaligned", 0)), "" if n else invalid, ", ".join(low))
    return t


def modem_table(link: str, d: dict):
    """The 4G modem's diagnostics as an installer reads them on site: where the bring-up stands,
    why it stopped, SIM, registration, signal, and how often the gateway had to step in."""
    from rich.table import Table

    def row(name: str, value: str) -> None:
        t.add_row(tr("out.status.modem." + name), value)

    t = Table(title=tr("out.status.modem", link=link), title_justify="left", show_header=False)
    t.add_column(tr("out.status.modem.what"))
    t.add_column(tr("out.status.modem.value"), overflow="fold")
    error = d.get("error") or ""
    row("stage", tr("out.status.modem.stage_is", stage=d.get("stage", "?"), state=d.get("state", "?")))
    row("problem", "[red]%s[/red]" % error if error else "[green]%s[/green]" % tr("out.status.modem.none"))
    row("module", " ".join(x for x in (d.get("model"), ("IMEI " + d["imei"]) if d.get("imei") else "") if x)
        or tr("out.status.modem.unidentified"))
    row("sim", " ".join(x for x in (d.get("sim") or "?", ("ICCID " + d["iccid"]) if d.get("iccid") else "") if x))
    reg = d.get("reg") or tr("out.status.modem.not_checked")
    if d.get("operator"):
        reg += ", " + d["operator"]
    row("network", reg + (tr("out.status.modem.via", via=d["reg_via"]) if d.get("reg_via") else ""))
    if d.get("rssi_dbm") is not None:
        signal = "%s dBm, %s (CSQ %s)" % (d["rssi_dbm"], d.get("signal", ""), d.get("csq"))
    elif d.get("csq") is not None:
        signal = tr("out.status.modem.csq_only", csq=d["csq"])
    else:
        signal = tr("out.status.modem.not_measured")
    row("signal", signal)
    row("apn", d.get("apn") or tr("out.status.modem.no_apn"))
    row("calls", tr("out.status.modem.calls_are", dials=d.get("dials", 0), refused=d.get("dial_failures", 0)))
    row("recoveries", tr("out.status.modem.recoveries_are", cycles=d.get("power_cycles", 0),
                         restarts=d.get("restarts", 0), presses=d.get("pwrkey_pulses", 0)))
    if d.get("last_urc"):
        row("urc", d["last_urc"])
    return t


def fetch(port_spec: str | None, baud: int = 115200, timeout: float = 10.0, events: int = 0) -> tuple[str, dict]:
    """(device path, the gateway's status answer) of the gateway `port_spec` names (device.resolve_port);
    with events, the answer carries "events": the last N ledger events. PortNotFound or DeviceGone when
    the gateway is not reachable, DeviceError when it answers with an error."""
    from nengjian_host.common.device import Console, resolve_port

    port = resolve_port(port_spec)
    with Console(port, baud=baud, timeout=timeout) as con:
        st = con.status()
        if events:
            st["events"] = con.events(events)
    return port, st


def event_line(ev: dict) -> str:
    return "  %s  %-8s %s" % (when(ev.get("ts")), ev.get("kind"), gatewaytext.say_event(ev))
