"""Entry point on every board: pick the application slot, start the gateway (Ctrl-C gives the
console back)."""

import board

if hasattr(board, "APP_DIR"):  # boards with signed updates: run the active A/B slot
    from nengjian import ota

    ota.activate(board.APP_DIR)
    del ota

from nengjian import app  # noqa: E402

app.main()
