"""The sim board's host side: the launcher (gateway), its build (build), simulated meters and modem,
the reference platform. `romfs_image()` is the ROMFS image the sim board mounts with NJ_ROMFS."""

from nengjian_host.sim.build import romfs_image

__all__ = ["romfs_image"]
