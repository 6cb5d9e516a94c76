"""Core-unit accuracy of the unit parser on the hand-labelled captions.

Usage: python bench/units_accuracy.py [--labels tests/data/units_labelled.jsonl] [--show-errors]
Prints exact-match rates of the core unit's motion, actor and recipient.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reelgraph.text.units import UnitParser

ROLES = ("motion", "actor", "recipient")
DEFAULT_LABELS = Path(__file__).resolve().parent.parent / "tests" / "data" / "units_labelled.jsonl"


def load_labels(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def core_accuracy(parser: UnitParser, rows: list[dict]) -> tuple[dict[str, float], list[dict]]:
    """Exact-match rate per role of the predicted core unit, and the rows that missed."""
    parsed = parser.parse_many([row["text"] for row in rows])
    hits = dict.fromkeys(ROLES, 0)
    errors = []
    for row, prompt in zip(rows, parsed, strict=True):
        core = prompt.core_unit
        predicted = {role: getattr(core, role) if core else None for role in ROLES}
        wrong = [role for role in ROLES if predicted[role] != row[role]]
        for role in ROLES:
            hits[role] += role not in wrong
        if wrong:
            errors.append({"text": row["text"], "expected": {r: row[r] for r in ROLES}, "got": predicted})
    return {role: hits[role] / len(rows) for role in ROLES}, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    ap.add_argument("--show-errors", action="store_true")
    args = ap.parse_args()
    rows = load_labels(args.labels)
    accuracy, errors = core_accuracy(UnitParser(), rows)
    print(f"{len(rows)} labelled captions")
    for role, value in accuracy.items():
        print(f"core {role:9s} exact match: {value:.1%}")
    if args.show_errors:
        for error in errors:
            print(json.dumps(error))


if __name__ == "__main__":
    main()
