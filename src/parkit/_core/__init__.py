"""parkit's core: wire format, remote exceptions, the worker side, start methods.

Nothing here knows of the public API built above it (pools, one-shot calls,
synchronization objects); those import from here, never the other way round.
"""
