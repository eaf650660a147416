"""``python -m progressgym.evaluation.split_report``: a bank's halves and the near-duplicate groups kept together.

Usage: ``python -m progressgym.evaluation.split_report [--bank progressgym --bank-path DIR]``.
"""

from __future__ import annotations

from progressgym.evaluation.splits import (
    NEAR_DUPLICATE_THRESHOLD,
    SPLIT_VERSION,
    assign_halves,
    near_duplicate_pairs,
)


def describe(bank_name: str, bank_path: str | None = None) -> list[str]:
    """Lines reporting a bank's halves: sizes, the near-duplicate groups kept together, the closest cross pair."""
    from progressgym.evaluation.banks import load_bank

    bank = load_bank(bank_name, path=bank_path)
    assignment = assign_halves(bank.name, bank.version, bank.scenarios)
    evaluation, elicitation = bank.get_split("evaluation"), bank.get_split("elicitation")
    lines = [
        f"{bank.name} ({bank.version}), split version {SPLIT_VERSION}: {len(evaluation)} evaluation, "
        f"{len(elicitation)} elicitation scenarios",
        f"near-duplicate groups (fuzz.ratio >= {NEAR_DUPLICATE_THRESHOLD:g}), each kept in one half: "
        f"{len(assignment.groups)}",
    ]
    lines.extend(f"  {assignment.halves[group[0]]:<11}  {' '.join(group)}" for group in assignment.groups)
    contexts = [s.context for s in (*evaluation, *elicitation)]
    closest = max(
        (score for i, j, score in near_duplicate_pairs(contexts, 0.0) if i < len(evaluation) <= j),
        default=0.0,
    )
    lines.append(f"closest contexts across the halves: {closest:.1f} / 100")
    return lines


def _main(argv: list[str] | None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m progressgym.evaluation.split_report",
        description="Report a bank's evaluation / elicitation split and its near-duplicate groups.",
    )
    parser.add_argument("--bank", default="core", help="item bank: core (default) or progressgym")
    parser.add_argument("--bank-path", default=None, help="directory of the progressgym bank's CSV files")
    args = parser.parse_args(argv)
    print("\n".join(describe(args.bank, args.bank_path)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m progressgym.evaluation.splits [--bank NAME] [--bank-path DIR]``: report a bank's split."""
    from progressgym._cli import run_cli

    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
