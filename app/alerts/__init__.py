"""Alerts (issue 13, item 4): rules from a validated TOML file with per-patient overrides,
evaluated after every write to a patient; raised -> acknowledged -> resolved, escalation,
an audit trail of every transition and signed, retried webhooks.

Modules: ``rules`` (the file), ``conditions`` (pure rule checks), ``service`` (lifecycle;
``open_alerts``, ``list_alerts``, ``acknowledge``, ``resolve``, ``evaluate_patient``,
``escalate_due``), ``webhooks`` (delivery), ``api`` (endpoints, ``flask alerts``,
``init_app``), ``openapi`` (``PATHS`` for the OpenAPI document). This package module imports
nothing, so the services may import ``app.alerts.service`` without pulling in the adapters.
"""
