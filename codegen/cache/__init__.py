"""What was built, kept: the disk cache of compiled code, the in-process memo, and the
``python -m exprc.cache`` command. Needs only the standard library."""
