"""One piece of work on a running gateway's USB console, for a crew command: the gateway named by
--port/--baud/--timeout, the command's exit code and the reason on stderr when it cannot be done."""

from __future__ import annotations

import sys
from typing import Any, Callable

EXIT_OK, EXIT_FAILED, EXIT_UNREACHABLE = 0, 1, 3


def on_gateway(args, work: Callable[[Any], Any], refused: str = "") -> tuple[int, Any]:
    """Run work(con) on a device.Console to the gateway of args.port: (EXIT_OK, its result); else, with
    the reason on stderr, (EXIT_UNREACHABLE, None) when the gateway is not reachable and (EXIT_FAILED,
    None) when it refuses (`refused` leads that reason)."""
    from nengjian_host.common.device import Console, DeviceError, DeviceGone, PortNotFound, resolve_port

    try:
        port = resolve_port(args.port)
        with Console(port, baud=args.baud, timeout=args.timeout) as con:
            return EXIT_OK, work(con)
    except (PortNotFound, DeviceGone) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_UNREACHABLE, None
    except DeviceError as e:
        print(f"error: {refused}{e}", file=sys.stderr)
        return EXIT_FAILED, None
