"""syncxr: medical vision-language pre-training on synthetic chest X-ray data."""

__version__ = "0.1.0"
