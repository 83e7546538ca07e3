"""`nengjian sim`: the embedded default a new user sees first.

Starts simulated Modbus meters on a pty wire, the reference platform on localhost, and the real
firmware on the MicroPython unix port, then shows, live, what the gateway polls, stores and what
the platform accepts. Ctrl-C (or --duration) stops everything cleanly.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from pathlib import Path

from nengjian_host.sim.gateway import SimGateway, demo_site
from nengjian_host.sim.meters.modbus_meters import SimMeter, SimModbusMeters
from nengjian_host.sim.refplatform import RefPlatform
from nengjian_host.sim.wire import PtyWire


def run(workdir: Path, duration: float, heap: str, meters: int, period_s: int, interval_s: int,
        fresh: bool, out=sys.stdout, modem: bool = False, speed: float = 1.0) -> int:
    """With `modem`, the gateway's only link is 4G through the simulated AT modem (power-on, SIM,
    registration, dial, PPP) instead of Ethernet: the modem driver and link supervisor at work.
    With `speed` above 1, simulated time (the gateway's RTC, the meters' energy, the platform's clock)
    runs that many times faster than real time from a few seconds before a period boundary, so the
    first values arrive within seconds (poll intervals stay in real seconds)."""
    if fresh and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    def say(prefix: str, line: str) -> None:
        out.write(f"{prefix} {line}\n")
        out.flush()

    units = tuple(range(1, meters + 1))
    loads = [SimMeter(u, power_kw=250.0 / u, energy_kwh=10000.0 * u) for u in units]
    t0 = time.time()
    s0 = float(int(t0) - int(t0) % period_s + period_s - 3) if speed != 1 else t0

    def sim_now() -> float:
        return s0 + (time.time() - t0) * speed

    with PtyWire() as wire, SimModbusMeters(wire.meters_path, loads, speedup=speed), \
            RefPlatform(db_path=str(workdir / "platform.sqlite"), port=0, period_s=period_s,
                        clock=sim_now if speed != 1 else None,
                        log=lambda line: say("[platform]", line)) as platform, contextlib.ExitStack() as stack:
        env: dict = {}
        if speed != 1:  # boards/sim/board.py utc_now
            env.update({"NJ_CLOCK_SPEED": speed, "NJ_CLOCK_T0": repr(t0), "NJ_CLOCK_S0": repr(s0)})
        if modem:
            from nengjian_host.sim.modem import SimModem

            ctl = workdir / "modem-pwrkey"
            sim_modem = stack.enter_context(SimModem(str(ctl)))
            env.update({"NJ_MODEM": sim_modem.path, "NJ_MODEM_CTL": str(ctl), "NJ_LINKS": "modem"})
            say("[sim]     ", f"4G modem (simulated, Quectel AT set) on {sim_modem.path}; data over the host network")
        gw = SimGateway(workdir / "gateway", {0: wire.gateway_path}, heap=heap, env=env,
                        echo=lambda line: say("[gateway] ", line))
        gw.write_config(demo_site(platform.url + "/api/register", units=units, period_s=period_s,
                                  interval_s=interval_s))
        say("[sim]     ", f"{meters} Modbus meter(s) on {wire.meters_path}, gateway bus on {wire.gateway_path}")
        say("[sim]     ", f"reference platform at {platform.url}; data every {period_s} s period; "
            f"gateway heap {heap}; files in {workdir}")
        if speed != 1:
            say("[sim]     ", f"simulated time runs {speed:g} times faster than real time")
        say("[sim]     ", "Ctrl-C stops" + (f"; stopping after {duration:.0f} s" if duration else ""))
        gw.start()
        started = time.monotonic()
        code = 0
        try:
            while not gw.down():  # a reset the gateway asks for (an update, the console) is no exit
                time.sleep(0.2)
                if duration and time.monotonic() - started >= duration:
                    break
            else:
                rc = gw.proc.poll() if gw.proc else None
                say("[sim]     ", "gateway stopped: " + ("its application left to the REPL" if rc is None
                                                        else f"exit code {rc}"))
                code = 1
        except KeyboardInterrupt:
            pass
        finally:
            gw.stop()
        rows = platform.records()
        say("[sim]     ", f"stopped; the platform holds {len(rows)} value(s)")
    return code
