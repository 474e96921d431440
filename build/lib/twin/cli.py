"""`python -m twin simulate ...`: simulate one scenario and write a CSV.

Bad arguments exit with code 2 and a message naming the argument and its allowed values.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

import numpy as np

from twin.drugs import DRUG_NAMES
from twin.parameters import PARAMETER_SETS
from twin.scenario import BASELINE_RANGES, Regimen, Scenario, ScenarioError
from twin.simulate import simulate


class CliError(Exception):
    """A bad command-line value (exit code 2)."""


def _glucose(text: str) -> float | str:
    if text in ("normal", "diabetic"):
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number in [2, 30] mmol/L or one of normal, diabetic, got {text!r}"
        ) from None


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers, got {text!r}") from None


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated numbers, got {text!r}") from None


def _baseline(items: Sequence[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"--baseline: expected NAME=VALUE, got {item!r}")
        if name not in BASELINE_RANGES:
            raise CliError(f"--baseline: unknown name {name!r}, allowed: "
                           f"{', '.join(BASELINE_RANGES)}")
        try:
            out[name] = float(value)
        except ValueError:
            raise CliError(f"--baseline: {name} must be a number, got {value!r}") from None
    return out


def parser() -> argparse.ArgumentParser:
    """The `simulate` argument parser."""
    p = argparse.ArgumentParser(prog="python -m twin simulate",
                                description="Simulate one virtual patient and write a CSV.")
    p.add_argument("--drug", default="benazepril", choices=DRUG_NAMES)
    p.add_argument("--dose-mg", type=float, default=0.0, help="dose per intake (mg); 0 = none")
    p.add_argument("--interval-h", type=float, default=24.0)
    p.add_argument("--n-doses", type=int, default=None)
    p.add_argument("--start-h", type=float, default=0.0)
    p.add_argument("--stop-h", type=float, default=None, help="no scheduled dose from here (h)")
    p.add_argument("--missed-doses", type=_int_list, default=(), metavar="K,K,...",
                   help="0-based indices of scheduled doses not taken")
    p.add_argument("--extra-doses-h", type=_float_list, default=(), metavar="T,T,...",
                   help="times (h) of extra doses of --dose-mg")
    p.add_argument("--hours", type=float, default=120.0, help="simulated span (h)")
    p.add_argument("--glucose", type=_glucose, default=5.0,
                   help="mmol/L, or the daily profile normal | diabetic")
    p.add_argument("--renal", choices=("normal", "impaired"), default="normal")
    p.add_argument("--age", type=float, default=50.0)
    p.add_argument("--infected", action="store_true")
    p.add_argument("--infection-onset-h", type=float, default=0.0)
    p.add_argument("--baseline", action="append", default=[], metavar="NAME=VALUE",
                   help=f"personal pre-treatment value; NAME in {', '.join(BASELINE_RANGES)}")
    p.add_argument("--parameters", choices=PARAMETER_SETS, default="clinical")
    p.add_argument("--format", choices=("standard", "reference"), default="standard")
    p.add_argument("--step-h", type=float, default=0.048, help="output step (h)")
    p.add_argument("-o", "--output", default="-", help="CSV path, - for stdout")
    return p


def _times(hours: float, step: float, exclusive: bool) -> np.ndarray:
    if not (math.isfinite(hours) and 0.0 < hours <= 24.0 * 365):
        raise CliError(f"--hours: must be in (0, 8760], got {hours:g}")
    if not (math.isfinite(step) and 1e-3 <= step <= hours):
        raise CliError(f"--step-h: must be in [0.001, hours={hours:g}], got {step:g}")
    n = math.floor(hours / step + 1e-9)
    times = step * np.arange(n + 1)
    if exclusive or times[-1] > hours + 1e-9:
        times = times[times < hours - 1e-9]
    if len(times) > 200_000:
        raise CliError(f"--step-h: gives {len(times)} output times, at most 200000 allowed")
    return times


def run(args: argparse.Namespace) -> int:
    """Build the scenario, simulate, write the CSV; returns the exit code."""

    scenario = Scenario(
        age_years=args.age, renal_function=args.renal, glucose=args.glucose,
        infected=args.infected, infection_onset_h=args.infection_onset_h,
        regimen=Regimen(drug=args.drug, dose_mg=args.dose_mg, interval_h=args.interval_h,
                        n_doses=args.n_doses, start_h=args.start_h, stop_h=args.stop_h,
                        missed_doses=args.missed_doses, extra_doses_h=args.extra_doses_h),
        baseline=_baseline(args.baseline))
    times = _times(args.hours, args.step_h, exclusive=args.format == "reference")
    result = simulate(scenario, times, parameters=args.parameters)
    frame = result.to_reference_frame() if args.format == "reference" else result.to_frame()
    if args.output == "-":
        frame.to_csv(sys.stdout, index=False)
    else:
        frame.to_csv(args.output, index=False)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m twin simulate`."""
    args = parser().parse_args(argv)
    try:
        return run(args)
    except (ScenarioError, CliError) as exc:
        print(f"python -m twin simulate: error: {exc}", file=sys.stderr)
        return 2
