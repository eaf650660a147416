"""``python -m progressgym.run``: run an alignment algorithm through a challenge, or resume a run.

Examples::

    python -m progressgym.run --challenge follow                      # static examinee on the mini timeline
    python -m progressgym.run --challenge predict --timesteps-ahead 2 --algorithm oracle
    python -m progressgym.run --challenge coevolve --out runs/coevolve-1 --seed 1
    python -m progressgym.run --resume runs/coevolve-1                 # after an interruption
    python -m progressgym.run --list                                   # challenges, algorithms, timelines
    python -m progressgym.run --grid --algorithms static,oracle --challenges follow,predict --seeds 0,1,2
    python -m progressgym.run --grid --grid-config grid.toml --executor ray --num-gpus 1
    python -m progressgym.run --grid --resume runs/grid_20250101-120000     # finish an interrupted grid

Defaults run on a CPU without network: the ``mini`` timeline, the ``hf`` backend. Every argument is checked
before the run directory is created; a bad one is reported on one line with exit status 2.

Data-parallel training: ``accelerate launch --num_processes 4 -m progressgym.run --challenge follow
--algorithm lifelong-dpo --out runs/follow-dp`` runs the same run in 4 processes that train together; the
main process alone writes the run directory, which ``--out`` must name (see :mod:`progressgym._distributed`).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
import types
import typing
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from progressgym._cli import run_cli, silence_progress_bars
from progressgym._distributed import is_distributed, is_main_process, world_size
from progressgym._paths import check_writable_path, claim_new_dir
from progressgym.algorithms import DEFAULT_ALGORITHM
from progressgym.error import InvalidInput
from progressgym.log import summary

DEFAULT_TIMELINE = "mini"
DEFAULT_BACKEND = "hf"
_GRID_FLAGS = (
    "algorithms",
    "challenges",
    "seeds",
    "grid_config",
    "executor",
    "ray_address",
    "max_parallel",
    "num_cpus",
    "num_gpus",
)
_BACKEND_FLAGS = ("dtype", "tensor_parallel_size", "gpu_memory_utilization", "max_model_len")
"""Flags that become the judge's ``backend_options``."""
_RUN_FLAGS = (
    "challenge",
    "algorithm",
    "timeline",
    "backend",
    "device",
    *_BACKEND_FLAGS,
    "seed",
    "out",
    "timesteps_ahead",
    "query_budget",
    "bank",
    "bank_path",
    "eval_format",
    "model_dir",
    "prompt_format",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise InvalidInput(f"{message} (see --help)")


def _parser(*, add_help: bool = True) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m progressgym.run",
        description="Run an alignment algorithm (examinee) through a progressgym challenge.",
        add_help=add_help,
    )
    parser.add_argument("--challenge", help="follow, predict or coevolve (or an id such as Follow-v0)")
    parser.add_argument(
        "--algorithm", help=f"registered algorithm (default: {DEFAULT_ALGORITHM}); see --list"
    )
    parser.add_argument("--timeline", help=f"timeline of century models (default: {DEFAULT_TIMELINE})")
    parser.add_argument(
        "--backend", help=f"inference backend of the judge: hf or vllm (default: {DEFAULT_BACKEND})"
    )
    parser.add_argument("--device", help="backend device: auto (default), cpu or cuda")
    engine = parser.add_argument_group("backend settings (the judge's queries and evaluations)")
    engine.add_argument(
        "--dtype",
        help="weights' dtype: auto (default: bfloat16 on CUDA, float32 on CPU), float32, bfloat16...",
    )
    engine.add_argument(
        "--tensor-parallel-size", type=int, metavar="N", help="GPUs per model (vllm on CUDA; default: 1)"
    )
    engine.add_argument(
        "--gpu-memory-utilization",
        type=float,
        metavar="F",
        help="share of each GPU's memory vLLM may take (default: 0.85)",
    )
    engine.add_argument(
        "--max-model-len", type=int, metavar="N", help="context length cap (default: the model's)"
    )
    parser.add_argument("--seed", type=int, help="run seed (default: 0)")
    parser.add_argument("--out", help="run directory (default: runs/<challenge>_<algorithm>_seed<N>_<time>)")
    parser.add_argument(
        "--resume", metavar="RUN_DIR", help="finish an interrupted run (or grid) from its directory"
    )
    parser.add_argument(
        "--timesteps-ahead", type=int, help="Predict: centuries ahead to be scored against (default: 1)"
    )
    parser.add_argument(
        "--answers",
        choices=("auto", "choose", "generate"),
        help="Coevolve: what the proxy learns from, choose (likelihood-read answers) or generate (written "
        "ones); default auto: choose on timelines whose models do not write (mini), else generate",
    )
    parser.add_argument(
        "--query-budget", type=int, help="queries the examinee may ask per step (default: unlimited)"
    )
    parser.add_argument(
        "--bank", help="item bank of the evaluation: core (default), progressgym or a .jsonl file"
    )
    parser.add_argument("--bank-path", help="directory of the progressgym bank's CSV files")
    parser.add_argument(
        "--eval-format", action="append", help="evaluation question format (repeatable; default: all)"
    )
    parser.add_argument("--model-dir", help="directory holding downloaded timeline models")
    parser.add_argument(
        "--prompt-format",
        help="how prompts are written: auto (default: a model's chat template, else the timeline's "
        "format, alpaca for HistLlama3), chat_template, alpaca or plain",
    )
    parser.add_argument(
        "--list", action="store_true", help="list challenges, algorithms and timelines, then exit"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    grid = parser.add_argument_group(
        "grids",
        "every combination of algorithms, challenges and seeds, one run directory each under the grid's "
        "folder (--out, default runs/grid_<time>); the run flags above apply to every cell",
    )
    grid.add_argument("--grid", action="store_true", help="run a grid of runs (see progressgym.grid)")
    grid.add_argument("--algorithms", metavar="A,B", help="algorithms of the grid, comma-separated")
    grid.add_argument("--challenges", metavar="C,D", help="challenges of the grid, comma-separated")
    grid.add_argument("--seeds", metavar="0,1,2", help="seeds of the grid (default: 0)")
    grid.add_argument(
        "--grid-config", metavar="FILE", help="the grid's settings as TOML or JSON; flags override it"
    )
    grid.add_argument(
        "--executor", metavar="local|ray", help="where cells run: local processes (default) or Ray tasks"
    )
    grid.add_argument(
        "--ray-address", metavar="ADDRESS", help="join this Ray cluster (default: start a local one)"
    )
    grid.add_argument(
        "--max-parallel", metavar="N", type=int, help="cells running at once (local default: 1)"
    )
    grid.add_argument(
        "--num-cpus", metavar="N", type=float, help="CPU cores per cell (Ray resource; default 1)"
    )
    grid.add_argument("--num-gpus", metavar="N", type=float, help="GPUs per cell (Ray resource; default 0)")
    return parser


# ---------------------------------------------------------------- algorithm flags from config dataclasses


def _flag_type(annotation: Any) -> tuple[Any, bool]:
    """(argparse type, is_bool) for a config field annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _flag_type(args[0])
    if annotation is bool:
        return None, True
    if annotation in (int, float, str):
        return annotation, False
    return str, False


def _add_config_flags(
    parser: argparse.ArgumentParser, name: str, config_cls: type[Any]
) -> list[tuple[str, str]]:
    """Add one flag per field of an algorithm's config dataclass; returns (field, dest) pairs."""
    group = parser.add_argument_group(f"options of algorithm {name!r}")
    hints = typing.get_type_hints(config_cls)
    taken = {a.dest for a in parser._actions}
    pairs = []
    for field in dataclasses.fields(config_cls):
        flag_name = field.name if field.name not in taken else f"{name}_{field.name}"
        dest = f"algo__{field.name}"
        kind, is_bool = _flag_type(hints.get(field.name, str))
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = field.metadata.get("help", "")
        if default is not None:  # ``None`` defaults say "from the preset" in their own help
            help_text = f"{help_text} (default: {default})".strip()
        flag = "--" + flag_name.replace("_", "-")
        if is_bool:
            group.add_argument(
                flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            group.add_argument(flag, dest=dest, type=kind, default=None, help=help_text)
        pairs.append((field.name, dest))
    return pairs


def _parse(argv: list[str] | None) -> tuple[argparse.Namespace, dict[str, Any]]:
    """Parse the arguments, including the flags of the chosen algorithm's configuration."""
    from progressgym.registration import algorithm_class

    first, _ = _parser(add_help=False).parse_known_args(argv)
    parser = _parser()
    pairs: list[tuple[str, str]] = []
    if not first.list and first.resume is None and not first.grid:
        cls = algorithm_class(first.algorithm or DEFAULT_ALGORITHM)
        if cls.config_cls is not None:
            pairs = _add_config_flags(parser, first.algorithm or DEFAULT_ALGORITHM, cls.config_cls)
    args = parser.parse_args(argv)
    overrides = {field: getattr(args, dest) for field, dest in pairs if getattr(args, dest) is not None}
    return args, overrides


# -------------------------------------------------------------------------------------------- commands


def _first_line(text: str | None) -> str:
    return (inspect.cleandoc(text or "").splitlines() or [""])[0]


def list_everything() -> str:
    """The text of ``--list``."""
    from progressgym.registration import algorithm_class, list_algorithms, list_challenges
    from progressgym.timeline import list_timelines

    lines = ["challenges:"]
    for spec in list_challenges():
        extra = ", ".join(f"{k}={v}" for k, v in spec.kwargs.items())
        lines.append(f"  {spec.id:<20} {spec.description}" + (f" [{extra}]" if extra else ""))
    lines.append("algorithms:")
    for name in list_algorithms():
        cls = algorithm_class(name)
        tag = " [PRIVILEGED: cheating upper bound, not comparable]" if cls.privileged else ""
        default = " (default)" if name == DEFAULT_ALGORITHM else ""
        lines.append(f"  {name:<20} {_first_line(cls.__doc__)}{default}{tag}")
    lines.append("timelines:")
    for timeline in list_timelines():
        default = (
            " (default)"
            if timeline.name == DEFAULT_TIMELINE and "default" not in timeline.description
            else ""
        )
        lines.append(f"  {timeline.name:<24} {timeline.description}{default}")
    return "\n".join(lines)


def _default_out(challenge: str, algorithm: str, seed: int) -> Path:
    """A new run directory ``runs/<challenge>_<algorithm>_seed<N>_<time>`` (``-2``, ``-3``... when taken).

    The directory is created here, so two runs started in the same second never share one.
    """
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return claim_new_dir(Path("runs") / f"{challenge}_{algorithm}_seed{seed}_{stamp}")


def _judge_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The judge arguments given on the command line (the challenge's own defaults fill the rest)."""
    optional = {
        "timeline": args.timeline,
        "backend": args.backend,
        "device": args.device,
        "query_budget": args.query_budget,
        "bank": args.bank,
        "bank_path": args.bank_path,
        "eval_formats": args.eval_format,
        "model_dir": args.model_dir,
        "timesteps_ahead": args.timesteps_ahead,
        "answers": args.answers,
        "prompt_format": args.prompt_format,
    }
    kwargs = {k: v for k, v in optional.items() if v is not None}
    engine = {name: getattr(args, name) for name in _BACKEND_FLAGS if getattr(args, name) is not None}
    if engine:
        from progressgym.backends import check_backend_settings

        kwargs["backend_options"] = check_backend_settings(engine)
    return kwargs


def _main(argv: list[str] | None) -> int:
    from progressgym.registration import challenge_spec, make_examinee
    from progressgym.runner import completed_steps, load_run_config, resume_run, run_episode

    args, overrides = _parse(argv)
    if args.list:
        print(list_everything())
        return 0
    progress = not args.no_progress
    if not progress:
        # Also silences the per-model "Loading weights" bars of transformers.
        silence_progress_bars()

    from progressgym.grid import GRID_FILE

    if args.grid or (args.resume is not None and (Path(args.resume) / GRID_FILE).is_file()):
        return _grid(args, progress)
    stray = [f"--{f.replace('_', '-')}" for f in _GRID_FLAGS if getattr(args, f) is not None]
    if stray:
        raise InvalidInput(f"{stray[0]} needs --grid")

    if args.resume is not None:
        given = [f"--{f.replace('_', '-')}" for f in _RUN_FLAGS if getattr(args, f) is not None]
        if given:
            raise InvalidInput(
                f"--resume takes every setting from the run's config.json; drop {', '.join(given)}"
            )
        root = Path(args.resume)
        load_run_config(root)
        completed_steps(root)
        result = resume_run(root, progress=progress)
        if is_main_process():
            print(summary(result, root))
        return 0

    if args.challenge is None:
        raise InvalidInput("--challenge is required (follow, predict or coevolve; see --list)")
    if args.out is None and is_distributed():
        raise InvalidInput(
            f"a run under {world_size()} processes (accelerate launch, torchrun) needs --out: the run "
            "directory they share"
        )
    if args.out is not None:
        check_writable_path(args.out, "--out", directory=True)
    spec = challenge_spec(args.challenge)
    kwargs = _judge_kwargs(args)
    if (
        "timesteps_ahead" in kwargs
        and "timesteps_ahead" not in inspect.signature(spec.judge_class()).parameters
    ):
        raise InvalidInput(f"--timesteps-ahead applies to Predict only, not {spec.id}")
    if "answers" in kwargs and "answers" not in inspect.signature(spec.judge_class()).parameters:
        raise InvalidInput(f"--answers applies to Coevolve only, not {spec.id}")
    judge = spec.make(**kwargs)
    algorithm = args.algorithm or DEFAULT_ALGORITHM
    examinee = make_examinee(algorithm, overrides or None)
    _check_before_writing(judge, examinee)
    seed = 0 if args.seed is None else args.seed
    out = Path(args.out) if args.out else _default_out(spec.id, algorithm, seed)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"{out} already exists; resume it with --resume {out} or choose another --out")

    result = run_episode(judge, examinee, seed=seed, run_dir=out, algorithm=algorithm, progress=progress)
    if is_main_process():
        print(summary(result, out))
    return 0


def _check_before_writing(judge: Any, examinee: Any) -> None:
    """Check what the run would otherwise refuse only after creating its directory.

    The algorithm's settings are resolved for the judge's timeline (preset, ranges, choices) and the item
    bank is read (a ``progressgym`` bank without usable files is refused here), before anything is written.
    """
    config = getattr(examinee, "config", None)
    if config is not None and callable(getattr(config, "resolved", None)):
        config.resolved(judge.timeline.name)
    judge.item_bank("evaluation")


def _grid(args: argparse.Namespace, progress: bool) -> int:
    """``--grid``: run a grid (or ``--resume`` one) and print its table; exit status 1 if a cell failed."""
    from progressgym import grid

    if is_distributed():
        raise InvalidInput(
            f"--grid starts one process per cell itself; run it once, not under {world_size()} processes "
            "(accelerate launch, torchrun)"
        )
    single = [f for f in ("challenge", "algorithm", "seed") if getattr(args, f) is not None]
    if single:
        raise InvalidInput(f"--grid takes --{single[0]}s (a comma-separated list), not --{single[0]}")
    settings = grid.load_grid_config(args.grid_config) if args.grid_config else {}
    if args.algorithms is not None:
        settings["algorithms"] = grid.parse_list(args.algorithms)
    if args.challenges is not None:
        settings["challenges"] = grid.parse_list(args.challenges)
    if args.seeds is not None:
        settings["seeds"] = grid.parse_seeds(args.seeds)
    options = _judge_kwargs(args)
    if options:
        settings["options"] = {**settings.get("options", {}), **options}
    for name in ("executor", "ray_address", "max_parallel", "num_cpus", "num_gpus"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    if args.out is not None and args.resume is None:
        check_writable_path(args.out, "--out", directory=True)
    if args.resume is not None:
        if args.out is not None:
            raise InvalidInput("--resume continues the grid in its own directory; drop --out")
        report = grid.resume_grid(args.resume, settings, progress=progress)
    else:
        spec, executor = grid.make_grid(settings)
        report = grid.run_grid(spec, args.out, executor=executor, progress=progress)
    print(report.table())
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m progressgym.run``; returns the exit status."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
