"""The patient twin: a PyTorch model of the renin-angiotensin system and blood pressure.

This package knows nothing of the web service: it never imports Flask, SQLAlchemy or
the ``app`` package. The service calls it through the small public API re-exported here.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
