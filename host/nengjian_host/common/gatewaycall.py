"""One piece of work on a running gateway's USB console, for a crew command.

Owns: the --port/--baud/--timeout options every command on a running gateway takes (port_args),
and running one piece of work on the gateway they name (on_gateway): the command's exit code, and
the reason through output.fail when it cannot be done.
"""

from __future__ import annotations

from typing import Any, Callable

from nengjian_host.common.messages import t_in
from nengjian_host.common.output import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, fail

PORT_HELP = ("the gateway: sn:USB-SERIAL, mac:MAC, a device path, or sim:DIR (a `nengjian sim` run); "
             "without it, the one USB port whose console answers as a gateway")


def port_args(p, timeout: float = 10.0) -> None:
    """--port, --baud and --timeout on a command's parser."""
    from nengjian_host.common.messages import t

    p.add_argument("--port", help=t("help.port"))
    p.add_argument("--baud", type=int, default=115200, help=t("help.baud"))
    p.add_argument("--timeout", type=float, default=timeout, help=t("help.timeout"))


def on_gateway(args, work: Callable[[Any], Any], refused: str = "") -> tuple[int, Any]:
    """Run work(con) on a device.Console to the gateway of args.port: (EXIT_OK, its result); else, with
    the reason reported (output.fail), (EXIT_UNREACHABLE, None) when the gateway is not reachable and
    (EXIT_FAILED, None) when it refuses (`refused` leads that reason)."""
    from nengjian_host.common.device import Console, DeviceError, DeviceGone, PortNotFound, resolve_port

    try:
        port = resolve_port(args.port)
        with Console(port, baud=args.baud, timeout=args.timeout) as con:
            return EXIT_OK, work(con)
    except (PortNotFound, DeviceGone) as e:
        return fail(args, EXIT_UNREACHABLE, str(e)), None
    except DeviceError as e:
        return fail(args, EXIT_FAILED, refused + str(e),
                    zh=getattr(e, "zh", None) or t_in("zh", "err.gateway_refused", reason=e)), None
