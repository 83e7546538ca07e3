"""Entry point on every board: pick the application slot, start the gateway (Ctrl-C gives the
console back).

A version on trial (nengjian.ota) that raises while it starts resets the board: left in the REPL it
would never boot again by itself, and only a reset counts the trial boot that leads to a rollback.
Any other version keeps the old behaviour (the traceback and the REPL; the watchdog, once the
application started it, resets a board left there).
"""

import sys

import board

trial = None
if hasattr(board, "APP_DIR"):  # boards with signed updates: run the active A/B slot
    from nengjian import ota

    ota.install_pending(board.APP_DIR)  # a bundle left for a fresh heap: verified before anything else
    slot = ota.activate(board.APP_DIR)
    if slot and ota.trial(board.APP_DIR):
        trial = slot
    del ota, slot


def _trial_failed(e):
    sys.print_exception(e)
    # The trial's own package may be what is broken: write down why with the built-in one.
    for name in list(sys.modules):
        if name == "nengjian" or name.startswith("nengjian."):
            del sys.modules[name]
    if trial in sys.path:
        sys.path.remove(trial)
    try:
        from nengjian import ota

        ota.failed(board.APP_DIR, "%s: %s" % (type(e).__name__, e))
    except Exception as e2:  # the reset must come whatever happens here
        sys.print_exception(e2)
    print("update on trial failed to start: resetting")
    board.reset()


try:
    from nengjian import app

    app.main()
except Exception as e:
    if trial is None:
        raise
    _trial_failed(e)
