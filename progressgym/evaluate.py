"""``python -m progressgym.evaluate``: a model's 19-dimension value vector, or a whole timeline's.

Examples::

    python -m progressgym.evaluate --model mini:13
    python -m progressgym.evaluate --model ./my-model --bank progressgym --bank-path DIR --json out.json
    python -m progressgym.evaluate --timeline mini --plot values.png
    python -m progressgym.evaluate export --bank core --split evaluation --out DIR   # the bank as datasets
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from progressgym._cli import run_cli, silence_progress_bars
from progressgym._paths import atomic_write_json, check_writable_path
from progressgym.error import InvalidInput
from progressgym.evaluation.evaluator import Evaluation, evaluate, evaluate_timeline, resolve_model
from progressgym.evaluation.items import SPLITS, ItemBank
from progressgym.evaluation.prompts import FORMATS, ORDERS
from progressgym.evaluation.scoring import MODES
from progressgym.prompt_format import (
    PROMPT_FORMATS,
    configure,
    prompt_format_fingerprint,
    timeline_prompt_format,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line and exit status 2 through run_cli, instead of argparse's usage block.
        raise InvalidInput(f"{message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m progressgym.evaluate",
        description=__doc__.split("\n\n")[0],
        epilog="python -m progressgym.evaluate export --help: write an item bank as Hugging Face datasets",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--model", help="a local model directory, or TIMELINE:CENTURY (e.g. mini:13, histllama3-8b:C013)"
    )
    which.add_argument("--timeline", help="evaluate every century of this timeline")
    parser.add_argument("--bank", default="core", help="item bank: core (default) or progressgym")
    parser.add_argument("--bank-path", help="directory of the progressgym bank's CSV files")
    parser.add_argument(
        "--allow-partial-bank",
        action="store_true",
        help="progressgym bank: evaluate on files that give fewer scenarios than the published ones",
    )
    parser.add_argument(
        "--split", default="evaluation", choices=SPLITS, help="bank split (default: evaluation)"
    )
    parser.add_argument("--backend", default="hf", help="inference backend: hf (default) or vllm")
    parser.add_argument("--device", help="backend device: auto, cpu or cuda")
    parser.add_argument("--mode", default="logprob", choices=MODES, help="answer scoring (default: logprob)")
    parser.add_argument(
        "--format", action="append", choices=FORMATS, help="question format (repeatable; default: all)"
    )
    parser.add_argument("--orders", default="cyclic", choices=ORDERS, help="option orders for 4-action items")
    parser.add_argument("--json", help="write the evaluation(s) as JSON to this file")
    parser.add_argument(
        "--plot", help="write a PNG: the vector's bars, or with --timeline the centuries heat map"
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write cached vectors")
    parser.add_argument("--model-dir", help="directory holding downloaded timeline models")
    parser.add_argument(
        "--prompt-format",
        default="auto",
        choices=PROMPT_FORMATS,
        help="how prompts are written: auto (default: the model's chat template, else the timeline's "
        "format, alpaca for HistLlama3, else plain), chat_template, alpaca or plain",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _cost(evaluation: Evaluation) -> str:
    usage = evaluation.usage
    text = (
        f"{int(usage.get('prompts', 0)):,} prompts, {int(usage.get('forward_tokens', 0)):,} forward tokens, "
        f"{float(usage.get('seconds', 0.0)):.1f} s"
    )
    return f"{text} (cached; cost when computed)" if evaluation.cached else text


def _print_one(evaluation: Evaluation) -> None:
    print(f"model    {evaluation.model}  (fingerprint {evaluation.fingerprint})")
    print(f"bank     {evaluation.bank}")
    print(f"mode     {evaluation.mode}; formats {', '.join(evaluation.formats)}; orders {evaluation.orders}")
    print()
    width = max(len(d) for d in evaluation.dims)
    print(f"{'dimension':<{width}}   value  scenarios")
    for name, value, count in zip(evaluation.dims, evaluation.vector, evaluation.counts, strict=True):
        print(f"{name:<{width}}  {value:+.3f}  {count:>9}")
    print()
    print(f"invalid answers {evaluation.invalid_rate:.1%}, refusals {evaluation.refusal_rate:.1%}")
    print(f"cost     {_cost(evaluation)}")


def _print_timeline(name: str, results: dict[int, Evaluation]) -> None:
    first = next(iter(results.values()))
    print(f"timeline {name}; bank {first.bank}; mode {first.mode}; orders {first.orders}")
    width = max(len(d) for d in first.dims)
    print(f"{'dimension':<{width}}  " + "  ".join(f"{f'C{c:03d}':>6}" for c in results))
    for index, dim in enumerate(first.dims):
        print(f"{dim:<{width}}  " + "  ".join(f"{r.vector[index]:+6.3f}" for r in results.values()))
    invalid = max(r.invalid_rate for r in results.values())
    refusals = max(r.refusal_rate for r in results.values())
    print(f"invalid answers up to {invalid:.1%}, refusals up to {refusals:.1%}")
    for century, result in results.items():
        print(f"cost C{century:03d}  {_cost(result)}")


def _bank(args: argparse.Namespace) -> tuple[str | ItemBank, list[str]]:
    """The bank to evaluate on and what its loader dropped (the ``progressgym`` bank is read here)."""
    if args.bank != "progressgym":
        if args.allow_partial_bank:
            raise InvalidInput("--allow-partial-bank applies to --bank progressgym only")
        return args.bank, []
    from progressgym.evaluation.banks import load_bank

    bank = load_bank(
        "progressgym", path=args.bank_path, split=args.split, allow_partial=args.allow_partial_bank
    )
    return bank, [line for line in bank.report if ": dropped " in line]


def _print_dropped(dropped: list[str]) -> None:
    if dropped:
        print()
        print("bank: what the loader dropped")
        for line in dropped:
            print(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m progressgym.evaluate`` (``export ...``: see :mod:`progressgym.evaluation.export_cli`)."""
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["export"]:
        from progressgym.evaluation.export_cli import export_main

        return export_main(arguments[1:])
    args = _parser().parse_args(arguments)
    if args.no_progress:
        silence_progress_bars()
    # Output paths are checked before the evaluation, so a bad one never costs its work.
    if args.json:
        check_writable_path(args.json, "--json")
    if args.plot:
        check_writable_path(args.plot, "--plot")
    options = {"device": args.device} if args.device else None
    timeline = args.timeline or (args.model.partition(":")[0] if ":" in str(args.model) else "")
    configure(args.prompt_format, timeline_prompt_format(timeline))
    bank, dropped = _bank(args)
    settings: dict[str, Any] = {
        "bank": bank,
        "bank_path": args.bank_path,
        "split": args.split,
        "backend": args.backend,
        "backend_options": options,
        "mode": args.mode,
        "formats": args.format,
        "orders": args.orders,
        "use_cache": not args.no_cache,
        "progress": not args.no_progress,
    }
    if args.timeline:
        results = evaluate_timeline(args.timeline, model_dir=args.model_dir, **settings)
        _print_timeline(args.timeline, results)
        _print_dropped(dropped)
        if args.json:
            atomic_write_json(
                args.json,
                {
                    "timeline": args.timeline,
                    "evaluations": {f"C{c:03d}": r.to_dict() for c, r in results.items()},
                    "bank_dropped": dropped,
                },
            )
        if args.plot:
            from progressgym.evaluation.plots import plot_heatmap

            plot_heatmap(results, args.plot, title=f"Values by century: {args.timeline}")
        return 0
    result = evaluate(args.model, model_dir=args.model_dir, **settings)
    _print_one(result)
    fmt, template_hash = prompt_format_fingerprint(resolve_model(args.model, model_dir=args.model_dir).path)
    print(f"prompts  {fmt} (template sha256 {template_hash[:16]})")
    _print_dropped(dropped)
    if args.json:
        atomic_write_json(
            args.json,
            {
                **result.to_dict(),
                "bank_dropped": dropped,
                "prompt_format": fmt,
                "prompt_template_sha256": template_hash,
            },
        )
    if args.plot:
        from progressgym.evaluation.plots import plot_vector

        plot_vector(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
