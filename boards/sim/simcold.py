"""The sim board's cold code: what runs once at boot (the ROMFS image mounted and switched, the data
and ROMFS files opened, the modem link built, the reset cause read), on an operator's request (the
service button) or when credentials are read. boards/sim/board.py loads this module for the call and
drops it after (its _cold), so none of it holds heap while the gateway runs: nothing made here that
outlives the call is a function or class of this module (it would keep the module alive), and what it
needs of the board is handed in.
"""

import os


def mount_romfs(path, mount):
    """Mount the image at path as the ESP32 firmware mounts its romfs partition: at `mount`, first on
    sys.path. One allocation of the image's size, made while the heap is still whole; returns it."""
    import sys

    import vfs

    with open(path, "rb") as f:
        head = f.read(16)
        size = os.stat(path)[6]
        # The image's own length (a partition file is longer: erased bytes after the image)
        if head[:3] == b"\xd2\xcd\x31":
            n = i = 0
            for i in range(3, len(head)):
                n = (n << 7) | (head[i] & 0x7F)
                if not head[i] & 0x80:
                    size = min(size, i + 1 + n)
                    break
        image = bytearray(size)
        f.seek(0)
        f.readinto(image)
    vfs.mount(vfs.VfsRom(image), mount)
    sys.path.insert(0, mount)
    return size


def _file_device_class():
    # A sim gateway may boot a built-in package older than this board module (the upgrade tests start
    # from the last flat-layout release), which has only store.blockdev's file device.
    try:
        from nengjian.store.filedev import FileDevice
    except ImportError:
        from nengjian.store.blockdev import FileBlockDevice as FileDevice
    return FileDevice


def file_device(path, blocks, block_size):
    return _file_device_class()(path, blocks, block_size)


def romfs_stores(path, sim_dir, blocks, block_size):
    """The image NJ_ROMFS names (path) is "active" when it lies in the gateway's directory (the
    launcher's copy, which it may write); romfs_a.img and romfs_b.img are the stores. {} otherwise
    (an image shared by many gateways, e.g. the build's, is never written)."""
    if not path or path.rsplit("/", 1)[0] != sim_dir:
        return {}
    FileDevice = _file_device_class()
    return {"active": FileDevice(path, blocks, block_size),
            "a": FileDevice(sim_dir + "/romfs_a.img", blocks, block_size),
            "b": FileDevice(sim_dir + "/romfs_b.img", blocks, block_size)}


def switch_romfs(stores, app_dir, reset):
    parts = stores()
    if not parts:
        return
    try:
        import romcopy
    except ImportError:  # a built-in tree from before it came in: nothing to switch
        return
    romcopy.at_boot(app_dir, parts, reset)


def network_links(cfg, host_link_class, modem_link):
    order = (os.getenv("NJ_LINKS") or ("modem" if os.getenv("NJ_MODEM") else "host")).split(",")
    out = []
    for name in order:
        name = name.strip()
        if name == "host":
            out.append(host_link_class())
        elif name == "modem":
            out.append(modem_link(cfg))
    return out


def modem_link(cfg, port_class, pwrkey_class, ppp_class):
    """The 4G link over the simulated modem (NJ_MODEM, NJ_MODEM_CTL, NJ_MODEM_TIMING, NJ_APN,
    NJ_SIM_PIN); the classes are the board's PtyPort, SimPwrKey and SimPPP."""
    import json

    from nengjian.net import cellular, modem

    timing = json.loads(os.getenv("NJ_MODEM_TIMING") or "{}")
    ctl = os.getenv("NJ_MODEM_CTL")
    m = modem.Modem(port_class(os.getenv("NJ_MODEM")), pwrkey_class(ctl) if ctl else None,
                    apn=cfg.get("apn", os.getenv("NJ_APN") or "cmnet"),
                    pin=cfg.get("pin", os.getenv("NJ_SIM_PIN")), dial=cfg.get("dial", "atd"), timing=timing)
    return cellular.CellularLink(m, ppp_class, name="4g")


def credentials(sim_dir):
    out = {}
    for name in ("key", "cert"):
        try:
            with open(sim_dir + "/nj_keys/" + name + ".pem", "rb") as f:
                out[name] = f.read()
        except OSError:
            pass
    return out


def button_held(path):
    """The last '0' or '1' in the file at path is '0' (pressed); unset or missing: never held."""
    if not path:
        return False
    try:
        with open(path, "rb") as f:
            levels = f.read()
    except OSError:
        return False
    for i in range(len(levels) - 1, -1, -1):
        if levels[i] in (48, 49):  # '0' '1'
            return levels[i] == 48
    return False


def reset_cause(cause):
    from nengjian.system import health

    if not cause:
        return health.POWER_ON
    return cause if cause in health.RESET_CAUSES else health.UNKNOWN
