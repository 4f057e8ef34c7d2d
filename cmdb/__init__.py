"""An open-source CMDB: configuration items and their dependencies in one graph."""

__version__ = "0.1.0"
