"""`python -m twin <command> ...` (also the `twin` console script): simulate (twin.cli),
evaluate (twin.forecast.cli), evaluate-real and fit-real (twin.realdata.cli, which takes
the verb itself), evaluate-alerts and evaluate-checks
(twin.monitoring), fit-los and evaluate-los (twin.los.cli)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "simulate": ("twin.cli", "simulate one virtual patient and write a CSV"),
    "evaluate": ("twin.forecast.cli", "evaluate the forecasting engines"),
    "evaluate-real": ("twin.realdata.cli", "score the forecasters on a real ICU cohort"),
    "fit-real": ("twin.realdata.cli", "fit the vitals model on a real cohort"),
    "evaluate-alerts": ("twin.monitoring.evaluate_alerts",
                        "NEWS2 and the status rule on a real cohort (AUROC, alarms)"),
    "evaluate-checks": ("twin.monitoring.evaluate_checks",
                        "measurement checks on a real cohort with injected artefacts"),
    "fit-los": ("twin.los.cli", "fit the remaining-stay model on a real cohort"),
    "evaluate-los": ("twin.los.cli", "score the remaining-stay model on a real cohort"),
}
#: commands whose module's `main` parses the verb itself (given as its own name there)
VERB_MODULES = {"evaluate-real": "evaluate-real", "fit-real": "fit", "fit-los": "fit-los",
                "evaluate-los": "evaluate-los"}
USAGE = ("usage: python -m twin {simulate,evaluate,evaluate-real,fit-real,evaluate-alerts,"
         "evaluate-checks,fit-los,evaluate-los} [options]"
         "   (-h after a command for help)")


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to the subcommand's `main`; exit code 2 on an unknown or unavailable one."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        for name, (_, doc) in COMMANDS.items():
            print(f"  {name:17s}{doc}")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"python -m twin: error: unknown command {name!r}, choose from "
              f"{', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f"python -m twin: error: command {name!r} is not available "
                  f"({module_name} is not installed)", file=sys.stderr)
            return 2
        raise
    if name in VERB_MODULES:
        rest = [VERB_MODULES[name], *rest]
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
