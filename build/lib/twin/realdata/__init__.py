"""Real ICU cohorts (YAIB layout): loader, patient-level split and the real-data CLI verbs.

Import the submodules directly (``twin.realdata.loader``, ``twin.realdata.split``,
``twin.realdata.cli``); this package front stays empty so that importing it is cheap.
"""
