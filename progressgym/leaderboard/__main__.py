"""``python -m progressgym.leaderboard``: the submission schema, validation, the static site.

Examples::

    python -m progressgym.leaderboard validate runs/follow/submission.json more/*.json
    python -m progressgym.leaderboard build leaderboard/submissions --out leaderboard/site
    python -m progressgym.leaderboard export runs/follow --notes "lr 1e-4"    # submission.json of an older run
    python -m progressgym.leaderboard schema                 # regenerate leaderboard/submission.schema.json
    python -m progressgym.leaderboard schema --check         # exit 2 if the file is out of date
    python -m progressgym.leaderboard regenerate             # rerun the built-in algorithms, rebuild the site

Problems are printed one per line; the exit status is 2 when a submission is invalid or an argument is wrong.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from progressgym._cli import EXIT_USAGE, run_cli
from progressgym.error import InvalidInput


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise InvalidInput(f"{message} (see --help)")


def checkout_leaderboard_dir() -> Path | None:
    """The ``leaderboard/`` folder of the source checkout progressgym runs from, if it runs from one."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "progressgym").is_dir():
        return root / "leaderboard"
    return None


def _default_dir(what: str) -> Path:
    found = checkout_leaderboard_dir()
    if found is None:
        raise InvalidInput(f"progressgym is not running from a source checkout; pass {what}")
    return found


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m progressgym.leaderboard",
        description="Validate leaderboard submissions, recompute their scores, and build the static site.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    schema = commands.add_parser("schema", help="write the JSON Schema of submissions")
    schema.add_argument(
        "--out",
        help="file to write ('-' for stdout; default: the checkout's leaderboard/submission.schema.json)",
    )
    schema.add_argument("--check", action="store_true", help="only compare: exit 2 when the file differs")

    validate = commands.add_parser("validate", help="validate submissions and recompute their scores")
    validate.add_argument("files", nargs="+", metavar="FILE", help="submission files")
    validate.add_argument(
        "--no-references",
        action="store_true",
        help="skip comparing reference vectors with cached evaluations",
    )
    validate.add_argument(
        "--evaluate-references",
        action="store_true",
        help="evaluate timeline models that are on this machine but not in the evaluation cache (slow)",
    )
    validate.add_argument(
        "--strict", action="store_true", help="treat warnings (e.g. a corrected score) as problems"
    )

    build = commands.add_parser("build", help="build the static leaderboard site")
    build.add_argument("submissions", metavar="DIR_OF_SUBMISSIONS", help="directory searched for *.json")
    build.add_argument(
        "--out", required=True, metavar="SITE_DIR", help="site directory (new, empty, or a site)"
    )
    build.add_argument(
        "--skip-invalid", action="store_true", help="leave invalid submissions out instead of failing"
    )
    build.add_argument("--no-references", action="store_true", help="skip the reference-vector check")

    export = commands.add_parser("export", help="write submission.json for a finished run directory")
    export.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories holding result.json")
    export.add_argument("--notes", default="", help="free text shown on the submission's page")

    regenerate = commands.add_parser(
        "regenerate",
        help="run every built-in algorithm on every built-in challenge (mini timeline), then build",
    )
    regenerate.add_argument("--dir", help="leaderboard folder (default: the checkout's leaderboard/)")
    regenerate.add_argument("--seed", type=int, default=0, help="run seed (default: 0)")
    regenerate.add_argument("--work", help="where to keep the run directories (default: a temporary folder)")
    regenerate.add_argument("--challenge", action="append", help="only this challenge (repeatable)")
    regenerate.add_argument("--algorithm", action="append", help="only this algorithm (repeatable)")
    return parser


def _schema(args: argparse.Namespace) -> int:
    from progressgym.leaderboard.submission import schema_text

    text = schema_text()
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    path = Path(args.out) if args.out else _default_dir("--out") / "submission.schema.json"
    if args.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            print(f"{path} is out of date; run `python -m progressgym.leaderboard schema`", file=sys.stderr)
            return EXIT_USAGE
        print(f"{path} is up to date")
        return 0
    from progressgym._paths import atomic_write_text

    atomic_write_text(path, text)
    print(f"wrote {path}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from progressgym.leaderboard.validate import report_lines, validate_file

    status = 0
    for name in args.files:
        report = validate_file(
            name, check_refs=not args.no_references, evaluate_missing=args.evaluate_references
        )
        out, err = report_lines(report)
        for line in out:
            print(line)
        for line in err:
            print(line, file=sys.stderr)
        if not report.valid or (args.strict and report.warnings):
            status = EXIT_USAGE
    return status


def _build(args: argparse.Namespace) -> int:
    from progressgym.leaderboard.site import build_site
    from progressgym.leaderboard.validate import report_lines

    result = build_site(
        args.submissions, args.out, skip_invalid=args.skip_invalid, check_refs=not args.no_references
    )
    for report in result.invalid:
        for line in report_lines(report)[1]:
            print(line, file=sys.stderr)
    left_out = f", {len(result.invalid)} invalid left out" if result.invalid else ""
    print(f"wrote {result.out_dir}/index.html: {len(result.entries)} submissions{left_out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from progressgym.leaderboard.submission import write_submission

    for run_dir in args.run_dirs:
        print(f"wrote {write_submission(run_dir, notes=args.notes)}")
    return 0


def _regenerate(args: argparse.Namespace) -> int:
    from progressgym.leaderboard._regenerate import regenerate

    folder = Path(args.dir) if args.dir else _default_dir("--dir")
    regenerate(
        folder,
        seed=args.seed,
        work=Path(args.work) if args.work else None,
        challenges=args.challenge,
        algorithms=args.algorithm,
    )
    return 0


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handlers = {
        "schema": _schema,
        "validate": _validate,
        "build": _build,
        "export": _export,
        "regenerate": _regenerate,
    }
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    return handlers[args.command](args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m progressgym.leaderboard``; returns the exit status."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
