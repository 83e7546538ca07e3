"""`nengjian status`: a connected gateway's state, as the console's `status` answer says it, for a
person (rich tables) or a script (JSON).

Owns: asking the gateway (fetch) and the human rendering; the numbers come from
nengjian/console/status.py on the gateway.
"""

from __future__ import annotations

import datetime as dt

CST = dt.timezone(dt.timedelta(hours=8), "CST")


def when(ts: int | None, now: int | None = None) -> str:
    if not ts:
        return "never"
    text = dt.datetime.fromtimestamp(ts, CST).strftime("%Y-%m-%d %H:%M:%S")
    if now:
        ago = now - ts
        if ago >= 0:
            text += " (%s ago)" % duration(ago)
    return text


def duration(s: float) -> str:
    s = int(s)
    if s < 120:
        return "%d s" % s
    if s < 7200:
        return "%d min" % (s // 60)
    if s < 2 * 86400:
        return "%.1f h" % (s / 3600)
    return "%.1f d" % (s / 86400)


def size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (n, unit)
        n /= 1024
    return str(n)


def render(st: dict, port: str = "", console=None) -> None:
    """Print a status answer with rich: headline, alarms, meters, destinations, links, resources."""
    from rich.console import Console as RichConsole
    from rich.table import Table

    c = console or RichConsole()
    now = st.get("time")
    mode = st.get("mode", "?")
    colour = {"run": "green", "safe": "red"}.get(mode, "yellow")
    c.print("[bold]gateway %s[/bold]  firmware %s on board %s  %s" % (
        st.get("gateway_id"), st.get("firmware"), st.get("board"), ("via " + port) if port else ""))
    c.print("mode [%s]%s[/%s]   up %s   clock %s" % (colour, mode, colour, duration(st.get("uptime_s", 0)),
                                                      when(now)))
    if st.get("site"):
        c.print("site %s" % st["site"])
    alarms = st.get("alarms") or []
    if alarms:
        for a in alarms:
            c.print("[bold red]ALARM[/bold red] %s" % a)
    else:
        c.print("[green]no alarms[/green]")

    if st.get("meters"):
        t = Table(title="meters", title_justify="left")
        for col in ("meter", "bus", "state", "last reading", "values", "polls ok/failed", "last error"):
            t.add_column(col, overflow="fold")
        for m in st["meters"]:
            stats = m.get("stats") or {}
            state = "[red]offline[/red]" if m.get("offline") else (
                "[yellow]%d failures[/yellow]" % m["failures"] if m.get("failures") else "[green]ok[/green]")
            vals = " ".join("%s=%s" % kv for kv in (m.get("values") or {}).items())
            refused = m.get("unsupported") or {}
            if refused:  # points the meter refuses: left out of the values, asked again now and then
                vals += (" " if vals else "") + "[yellow]unsupported: %s[/yellow]" % ", ".join(sorted(refused))
            t.add_row(m["id"], m.get("bus", ""), state, when(m.get("last_ok"), now), vals,
                      "%s/%s" % (stats.get("ok", "?"), stats.get("failed", "?")), m.get("last_error") or "")
        c.print(t)
    kept = [m for m in st.get("meters") or () if m.get("memory")]
    if kept:
        c.print(memory_table(kept, now))
    if st.get("destinations"):
        t = Table(title="destinations", title_justify="left")
        for col in ("destination", "state", "backlog", "last upload", "sent", "last error"):
            t.add_column(col)
        for d in st["destinations"]:
            state = "[red]failing[/red]" if d.get("failing") else "[green]ok[/green]"
            t.add_row(d["name"], state, str(d.get("backlog", "?")), when(d.get("last_ok"), now),
                      str((d.get("stats") or {}).get("sent", "?")), d.get("last_error") or "")
        c.print(t)
    scored = [d for d in st.get("destinations") or () if d.get("quality")]
    if scored:
        c.print(quality_table(scored))
    if st.get("links"):
        t = Table(title="links", title_justify="left")
        t.add_column("link")
        t.add_column("state")
        t.add_column("details")
        active = (st.get("network") or {}).get("active")
        for link in st["links"]:
            up = link.get("up")
            state = "[green]up[/green]" if up else ("[red]down[/red]" if up is False else str(link.get("state", "?")))
            if active and (link.get("link") or link.get("name")) == active:
                state += ", carries the data"
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
        parts.append("store: last record %s, on flash %s" % (store.get("last_seq"), store.get("durable_seq")))
    if flash:
        parts.append("data volume %s free of %s" % (size(flash.get("free")), size(flash.get("size"))))
    heap = "heap %s free" % size(st.get("heap_free"))
    if st.get("heap_max_free") is not None:  # firmware that measures fragmentation (console status)
        heap += " (largest block %s)" % size(st.get("heap_max_free"))
    parts.append(heap)
    if st.get("last_upload") is not None:
        parts.append("last upload %s" % when(st.get("last_upload"), now))
    c.print("   ".join(parts))
    if mode == "safe" and st.get("safe_reason"):
        c.print("[red]safe mode:[/red] %s" % st["safe_reason"])


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
    from the sum of its parts."""
    from rich.table import Table

    t = Table(title="data quality (what the platform scores) / 数据质量", title_justify="left")
    for col in ("destination", "period", "accepted/due", "completeness", "on time", "vs parts (max)", "misaligned",
                "items below 90 %"):
        t.add_column(col)
    for d in dests:
        q = d["quality"]
        for slot in list(q.get("days") or ()) + list(q.get("months") or ()):
            low = sorted(code for code, (acc, due, _apart) in (slot.get("items") or {}).items() if acc * 10 < due * 9)
            bad = (slot.get("completeness") is not None and slot["completeness"] < 90) or (
                slot.get("apart_max") or 0) > 5
            comp = pct(slot.get("completeness"))
            t.add_row(d["name"], str(slot.get("period")), "%s/%s" % (slot.get("accepted"), slot.get("due")),
                      "[red]%s[/red]" % comp if bad else comp, pct(slot.get("timeliness")), pct(slot.get("apart_max")),
                      str(slot.get("misaligned", 0)), ", ".join(low))
    return t


def modem_table(link: str, d: dict):
    """The 4G modem's diagnostics as an installer reads them on site: where the bring-up stands,
    why it stopped, SIM, registration, signal, and how often the gateway had to step in."""
    from rich.table import Table

    t = Table(title="modem (%s)" % link, title_justify="left", show_header=False)
    t.add_column("what")
    t.add_column("value", overflow="fold")
    error = d.get("error") or ""
    t.add_row("stage", "%s (module %s)" % (d.get("stage", "?"), d.get("state", "?")))
    t.add_row("problem", "[red]%s[/red]" % error if error else "[green]none[/green]")
    t.add_row("module", " ".join(x for x in (d.get("model"), ("IMEI " + d["imei"]) if d.get("imei") else "") if x)
              or "not identified")
    t.add_row("SIM", " ".join(x for x in (d.get("sim") or "?", ("ICCID " + d["iccid"]) if d.get("iccid") else "")
                              if x))
    reg = d.get("reg") or "not checked yet"
    if d.get("operator"):
        reg += ", " + d["operator"]
    t.add_row("network", reg + ((" (via %s)" % d["reg_via"]) if d.get("reg_via") else ""))
    if d.get("rssi_dbm") is not None:
        signal = "%s dBm, %s (CSQ %s)" % (d["rssi_dbm"], d.get("signal", ""), d.get("csq"))
    elif d.get("csq") is not None:
        signal = "unknown (CSQ %s)" % d["csq"]
    else:
        signal = "not measured yet"
    t.add_row("signal", signal)
    t.add_row("APN", d.get("apn") or "(none)")
    t.add_row("calls", "%s dialled, %s refused" % (d.get("dials", 0), d.get("dial_failures", 0)))
    t.add_row("recoveries", "%s power cycle(s), %s restart(s) by itself, %s PWRKEY press(es)" % (
        d.get("power_cycles", 0), d.get("restarts", 0), d.get("pwrkey_pulses", 0)))
    if d.get("last_urc"):
        t.add_row("last URC", d["last_urc"])
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
    return "  %s  %-8s %s" % (when(ev.get("ts")), ev.get("kind"), ev.get("text"))
