"""``python -m progressgym.timeline``: list, show, fetch and build timelines.

Examples::

    python -m progressgym.timeline list
    python -m progressgym.timeline show histllama3-8b
    python -m progressgym.timeline fetch histllama3-8b --century C013 --model-dir ~/models
    python -m progressgym.timeline check mini
    python -m progressgym.timeline build mini --out DIR     # a new artifact set from the recipe
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
    build = sub.add_parser(
        "build", help="build a timeline from its recipe (mini: a complete artifact set with its manifest)"
    )
    build.add_argument("name")
    build.add_argument("--out", help="folder to write the artifact set into (must not exist or be empty)")
    build.add_argument(
        "--rebuild", action="store_true", help="discard a cached build first (built timelines)"
    )
    build.add_argument(
        "--weights-only", action="store_true", help="write the models and file table, skip measuring them"
    )
    build.add_argument(
        "--from-build", help="lay out this finished build of the current recipe instead of building"
    )
    check = sub.add_parser("check", help="check a shipped timeline's files and measure it against its design")
    check.add_argument("name")
    check.add_argument(
        "--rebuild", action="store_true", help="also build from the recipe and compare the weights (minutes)"
    )
    check.add_argument(
        "--strict-time", action="store_true", help="fail when the rebuild exceeds its time or memory limit"
    )
    return parser


def _source(timeline: Timeline) -> str:
    if timeline.artifacts:
        return "shipped"
    return "built locally" if timeline.builder else "hub"


def _list() -> int:
    rows = [(t.name, str(len(t.members)), _source(t), t.description) for t in list_timelines()]
    width = max(len(r[0]) for r in rows)
    print(f"{'timeline':<{width}}  centuries  source         description")
    for name, count, source, description in rows:
        print(f"{name:<{width}}  {count:>9}  {source:<13}  {description}")
    for timeline in list_timelines():
        if timeline.builder is None and timeline.artifacts is None:
            first, last = timeline.members[0], timeline.members[-1]
            print(f"  {timeline.name}: {first.code} {first.repo_id} ... {last.code} {last.repo_id}")
    return 0


def _show(name: str) -> int:
    timeline = get_timeline(name)
    print(f"{timeline.name}: {timeline.description}")
    for key, value in timeline.extras.items():
        print(f"  {key}: {value}")
    if timeline.artifacts:
        from progressgym.timeline import artifact_dir, load_manifest, manifest_hash

        source = artifact_dir(timeline)
        manifest = load_manifest(source)
        print(f"  shipped files: {source} (artifact version {manifest['artifact_version']})")
        print(f"  manifest sha256: {manifest_hash(source)}")
    if timeline.builder or timeline.artifacts:
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
    from pathlib import Path

    from progressgym._paths import check_writable_path
    from progressgym.error import InvalidInput
    from progressgym.timeline import built_timeline_dir

    timeline = get_timeline(args.name)
    if timeline.builder is None:
        raise InvalidInput(f"timeline {timeline.name!r} comes from the hub; use `fetch` to download it")
    if timeline.artifacts is not None:
        if not args.out:
            raise InvalidInput(
                f"timeline {timeline.name!r} ships its models (nothing to build before use); "
                f"`build {timeline.name} --out DIR` makes a new artifact set from the recipe"
            )
        out = check_writable_path(args.out, "--out", directory=True)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InvalidInput(f"--out {out} exists and is not an empty folder")
        # mini is the one shipped timeline; its freeze module knows how to measure and lay out a set.
        from progressgym.timeline.mini.freeze import build_artifacts

        source = Path(args.from_build) if args.from_build else None
        if source is not None and not all(
            (source / m.code / "config.json").is_file() for m in timeline.members
        ):
            raise InvalidInput(f"--from-build {source} is not a finished build of {timeline.name}")
        digest = build_artifacts(timeline, Path(out), weights_only=args.weights_only, from_build=source)
        print(f"{timeline.name} artifact set written to {out} (manifest sha256 {digest})")
        return 0
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
        timeline, rebuild=args.rebuild, strict_time=args.strict_time
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
