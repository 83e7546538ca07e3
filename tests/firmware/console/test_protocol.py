"""The console's own uptime (nengjian.console.protocol.Console.uptime_s): monotonic across the wrap of
the millisecond ticks, which an ESP32 reaches after 2**30 ms (about 12.4 days; a bare ticks_diff from
boot turns negative after half that)."""

from nengjian.console import protocol


def test_uptime_goes_on_across_the_ticks_wrap(monkeypatch):
    now = [0x3FFF0000]  # close to the wrap already at boot
    monkeypatch.setattr(protocol, "ticks_ms", lambda: now[0])
    monkeypatch.setattr(protocol, "_BOOT_MS", now[0])
    con = protocol.Console(type("Board", (), {})(), "0.1.0")
    step = 1 << 27  # about 37 hours between idle passes: under half the period, as the loop guarantees
    for _ in range(8):  # 8 x 37 h: 12.4 days, across the wrap and past where ticks_diff turns negative
        now[0] = (now[0] + step) & 0x3FFFFFFF
        up = con.uptime_s()
    assert up == 8 * step // 1000
