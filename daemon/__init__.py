"""homecal's engine: everything that works without a browser (store, config, sync, CLI)."""

__version__ = "0.1.0"
