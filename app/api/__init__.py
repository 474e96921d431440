"""REST API v1: JSON and FHIR R4, problem+json errors, OpenAPI 3.1."""

from app.api import idempotency
from app.api.routes import bp

idempotency.init_blueprint(bp)

__all__ = ["bp"]
