"""Markdown tables of an ``evaluate-real`` JSON (the tables of docs/realdata.md).

    .venv/bin/python -m twin evaluate-real --data data/eicu_demo/los --json /tmp/er.json
    .venv/bin/python scripts/realdata_tables.py /tmp/er.json

Per endpoint and horizon: MAE of the default engine, the state space alone (when scored),
the three baselines, the ratio to the best baseline, coverage at 0.8 / 0.9 / 0.95 and the
mean 0.9 width; then 0.9 coverage by age band and sex.
"""

from __future__ import annotations

import argparse
import json
import sys

BASELINES = ("persistence", "mean3", "mean12")
BANDS = ("age:<50", "age:50-69", "age:>=70", "sex:Female", "sex:Male", "change:yes")


def _f(x, nd=2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def accuracy(doc: dict) -> list[str]:
    eng = doc["default_engine"]
    res = doc["results"]
    extra = [e for e in res if e not in BASELINES and e != eng]
    head = ["endpoint", "h", eng, *extra, *BASELINES, "ratio to best", "cov 0.8", "cov 0.9",
            "cov 0.95", "width 0.9"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for ep in res[eng]:
        for h, r in res[eng][ep].items():
            best = min(res[b][ep][h]["mae"] for b in BASELINES)
            c = r["coverage"]
            cells = [ep, h, _f(r["mae"]), *(_f(res[e][ep][h]["mae"]) for e in extra),
                     *(_f(res[b][ep][h]["mae"]) for b in BASELINES), _f(r["mae"] / best, 3),
                     _f(c["0.8"], 3), _f(c["0.9"], 3), _f(c["0.95"], 3),
                     _f(r["width"]["0.9"], 1)]
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def subgroups(doc: dict) -> list[str]:
    sg = doc["subgroup_coverage"][doc["default_engine"]]
    head = ["endpoint", "h", *(b.split(":", 1)[1] if b[0] in "as" else "changing" for b in BANDS)]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for ep, by_h in sg.items():
        for h, g in by_h.items():
            rows.append("| " + " | ".join([ep, h, *(
                f"{g[b]['0.9']:.3f} (n {g[b]['n']})" if b in g else "-" for b in BANDS)]) + " |")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", nargs="+")
    args = p.parse_args(argv)
    for path in args.json:
        with open(path) as fh:
            doc = json.load(fh)
        print(f"<!-- {path}: {doc['stays']} stays ({doc.get('split')}), thin_h "
              f"{doc['thin_h']}, model {doc['model_version']} -->\n")
        print("\n".join(accuracy(doc)), "\n")
        print("\n".join(subgroups(doc)), "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
