"""``python -m progressgym.timeline``: list, show, fetch and build timelines.

Examples::

    python -m progressgym.timeline list
    python -m progressgym.timeline show histllama3-8b
    python -m progressgym.timeline fetch histllama3-8b --century C013 --model-dir ~/models
    python -m progressgym.timeline build mini
"""

from __future__ import annotations

import argparse
import sys

from progressgym._cli import run_cli
from progressgym.timeline import MODEL_DIR_ENV, Timeline, get_timeline, list_timelines, timeline_cache_dir


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m progressgym.timeline", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the registered timelines")
    show = sub.add_parser("show", help="show one timeline's centuries and where each model comes from")
    show.add_argument("name")
    fetch = sub.add_parser("fetch", help="find or download century models and print their local paths")
    fetch.add_argument("name")
    fetch.add_argument("--century", action="append", help="only this century (repeatable; default: all)")
    fetch.add_argument("--model-dir", help=f"directory holding downloaded models (default: ${MODEL_DIR_ENV})")
    fetch.add_argument("--no-download", action="store_true", help="never contact the hub")
    build = sub.add_parser("build", help="build a locally built timeline (e.g. mini) into the cache")
    build.add_argument("name")
    build.add_argument("--rebuild", action="store_true", help="discard the cached build first")
    check = sub.add_parser("check", help="measure a locally built timeline against its design targets")
    check.add_argument("name")
    check.add_argument("--no-fresh-build", action="store_true", help="skip timing a build from nothing")
    check.add_argument(
        "--strict-time", action="store_true", help="fail when the build exceeds its time or memory limit"
    )
    return parser


def _source(timeline: Timeline) -> str:
    return "built locally" if timeline.builder else "hub"


def _list() -> int:
    rows = [(t.name, str(len(t.members)), _source(t), t.description) for t in list_timelines()]
    width = max(len(r[0]) for r in rows)
    print(f"{'timeline':<{width}}  centuries  source         description")
    for name, count, source, description in rows:
        print(f"{name:<{width}}  {count:>9}  {source:<13}  {description}")
    for timeline in list_timelines():
        if timeline.builder is None:
            first, last = timeline.members[0], timeline.members[-1]
            print(f"  {timeline.name}: {first.code} {first.repo_id} ... {last.code} {last.repo_id}")
    return 0


def _show(name: str) -> int:
    timeline = get_timeline(name)
    print(f"{timeline.name}: {timeline.description}")
    for key, value in timeline.extras.items():
        print(f"  {key}: {value}")
    if timeline.builder:
        print(f"  cache: {timeline_cache_dir(timeline)}")
    print(f"{'century':<8} {'years':<10} model")
    for member in timeline.members:
        start = (member.century - 1) * 100
        where = member.repo_id or f"{timeline_cache_dir(timeline)}/{member.code}"
        print(f"{member.code:<8} {start}-{start + 99:<5} {where}")
    if timeline.card:
        print()
        print(timeline.card.rstrip())
    return 0


def _fetch(args: argparse.Namespace) -> int:
    timeline = get_timeline(args.name)
    centuries = args.century or [m.code for m in timeline.members]
    for century in centuries:
        ref = timeline.model(century, model_dir=args.model_dir, download=not args.no_download)
        print(f"{timeline.member(century).code}  {ref.path}  fingerprint={ref.fingerprint}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from progressgym.timeline import built_timeline_dir

    timeline = get_timeline(args.name)
    if timeline.builder is None:
        from progressgym.error import InvalidInput

        raise InvalidInput(f"timeline {timeline.name!r} comes from the hub; use `fetch` to download it")
    path = built_timeline_dir(timeline, rebuild=args.rebuild)
    print(f"{timeline.name} ready in {path}")
    for member in timeline.members:
        ref = timeline.model(member.century)
        print(f"{member.code}  fingerprint={ref.fingerprint}")
    return 0


def _check(args: argparse.Namespace) -> int:
    import importlib

    from progressgym.error import InvalidInput

    timeline = get_timeline(args.name)
    checker = timeline.checker
    if not checker:
        raise InvalidInput(f"timeline {timeline.name!r} has no design targets to check against")
    module, _, attr = checker.partition(":")
    status: int = getattr(importlib.import_module(module), attr)(
        timeline, fresh_build=not args.no_fresh_build, strict_time=args.strict_time
    )
    return status


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m progressgym.timeline``."""
    args = _parser().parse_args(argv)
    if args.command == "list":
        return _list()
    if args.command == "show":
        return _show(args.name)
    if args.command == "fetch":
        return _fetch(args)
    if args.command == "build":
        return _build(args)
    return _check(args)


if __name__ == "__main__":
    sys.exit(run_cli(main))
