"""The version of exprc; the disk cache keys what it builds by it."""

__version__ = "0.1.0"
