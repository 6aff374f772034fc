"""perception: multimodal perception toolkit (core)."""
__version__ = "0.1.0"
