"""Entry point on every board: start the gateway (Ctrl-C gives the console back)."""

from nengjian import app

app.main()
