"""The twin's version (one place; the package front and bundle manifests read it)."""

__version__ = "0.1.0"
