"""Ward monitoring, pure: NEWS2 (``news2``), patient status rules (``status``), measurement
checks (``checks``) and their evaluation on real cohorts (``evaluate_alerts``)."""
