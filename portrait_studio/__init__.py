"""Portrait Studio: one portrait photo + a driving signal -> a talking-portrait video."""

__version__ = "0.1.0"
