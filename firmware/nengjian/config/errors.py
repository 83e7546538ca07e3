"""The config layer's one exception: a site config that cannot be used, naming the field and the fault.

A module of its own so that the loader (nengjian.config) and the checks (nengjian.config.validate) both
import it without importing each other.
"""


class ConfigError(ValueError):
    pass
