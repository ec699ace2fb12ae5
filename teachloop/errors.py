"""User-facing errors: the CLI prints them as one line and exits non-zero."""


class TeachloopError(Exception):
    """A problem the user can fix; the message says what to do."""


class ConfigError(TeachloopError):
    pass


class RunStoreError(TeachloopError):
    pass


class PluginError(TeachloopError):
    pass
