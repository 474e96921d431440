"""Server-rendered clinician pages (work without JavaScript)."""

from app.web.views import bp

__all__ = ["bp"]
