"""``python -m progressgym.evaluate export``: write a bank split as Hugging Face datasets and JSON lines.

Examples::

    python -m progressgym.evaluate export --bank core --split evaluation --out core-eval
    python -m progressgym.evaluate export --bank progressgym --bank-path DIR --split all --out pg-all

The folder holds ``scenarios/`` and ``prompts/`` (read each with ``datasets.load_from_disk``),
``scenarios.jsonl``, ``prompts.jsonl`` and ``export.json`` (see :mod:`progressgym.evaluation.banks.export`).
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from progressgym._cli import silence_progress_bars
from progressgym._paths import check_writable_path
from progressgym.error import InvalidInput
from progressgym.evaluation.items import SPLITS
from progressgym.evaluation.prompts import FORMATS, ORDERS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line and exit status 2 through run_cli, instead of argparse's usage block.
        raise InvalidInput(f"{message} (see export --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m progressgym.evaluate export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bank", default="core", help="item bank: core (default) or progressgym")
    parser.add_argument("--bank-path", help="directory of the progressgym bank's CSV files")
    parser.add_argument(
        "--allow-partial-bank",
        action="store_true",
        help="progressgym bank: export files that give fewer scenarios than the published ones",
    )
    parser.add_argument(
        "--split", default="evaluation", choices=SPLITS, help="bank split (default: evaluation)"
    )
    parser.add_argument("--out", required=True, help="the folder to write (must not exist, or be empty)")
    parser.add_argument(
        "--format", action="append", choices=FORMATS, help="question format of the prompts (default: all)"
    )
    parser.add_argument("--orders", default="cyclic", choices=ORDERS, help="option orders for 4-action items")
    parser.add_argument("--overwrite", action="store_true", help="replace --out when it exists")
    return parser


def export_main(argv: list[str]) -> int:
    """Entry point of ``python -m progressgym.evaluate export``."""
    args = _parser().parse_args(argv)
    check_writable_path(args.out, "--out", directory=True)
    if args.allow_partial_bank and args.bank != "progressgym":
        raise InvalidInput("--allow-partial-bank applies to --bank progressgym only")
    from progressgym.evaluation.banks import export_bank, load_bank, read_manifest

    bank = load_bank(args.bank, path=args.bank_path, split=args.split, allow_partial=args.allow_partial_bank)
    import datasets

    silence_progress_bars()
    datasets.disable_progress_bars()
    out = export_bank(bank, args.out, formats=args.format, orders=args.orders, overwrite=args.overwrite)
    counts = read_manifest(out)["counts"]
    print(f"bank     {bank.key}")
    print(f"wrote    {out}: {counts['scenarios']} scenarios, {counts['prompts']} prompts")
    print(f"read it  datasets.load_from_disk('{out}/scenarios') or '{out}/prompts'")
    return 0


__all__ = ["export_main"]
