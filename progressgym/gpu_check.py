"""What only a GPU can tell, measured in one call of a few minutes: ``python -m progressgym.gpu_check``.

Three parts, each written to ``OUT/gpu_check.json`` (and a summary to ``OUT/gpu_check.txt``):

* ``parity``: the ``hf`` backend on CUDA against CPU on a tiny model: candidate log-likelihoods and greedy
  generations, in float32 and bfloat16.
* ``cost``: the cost of one HistLlama3-8B evaluation: a randomly initialised model with Llama-3-8B's exact
  configuration in bfloat16 (weights' values do not change the cost) scores the bank's prompts, tokenised by a
  Llama-3-sized tokenizer (a BPE with Llama 3's vocabulary size trained on the prompts themselves, so a token
  covers about as many characters as Llama 3's do). Tokens/s and seconds, projected to the whole bank.
* ``follow``: a Follow run on the ``histllama3-8b`` timeline name with the ``hf`` backend on CUDA, on a
  HistLlama3 twin (:mod:`progressgym.twin`) and a small bank (static examinee: training needs TRL).

Without CUDA the CPU-safe halves run (the CPU scores and generations, the token counts) and each CUDA half is
reported as skipped, with the reason. ``scripts/gpu_check.sh`` runs this on the GPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from progressgym.backends.base import BackendOptions, GenerateRequest, ScoreRequest, user

README_ESTIMATE_S = (40.0, 65.0)
"""The README's estimate of one 8B evaluation's scoring time on one H100 (seconds)."""
OFFICIAL_SCENARIOS = 1818
LLAMA3_8B: dict[str, Any] = {
    "vocab_size": 128_256,
    "hidden_size": 4096,
    "intermediate_size": 14_336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5,
    "bos_token_id": 128_000,
    "eos_token_id": 128_001,
    "tie_word_embeddings": False,
}
QUESTIONS = [
    f"Question {i}: is it right to break a promise to help a stranger?" + " Why?" * i for i in range(8)
]


def cuda_reason() -> str | None:
    """``None`` when a CUDA device is usable, else why not."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device: the CUDA half is skipped"
    return None


def _environment() -> dict[str, Any]:
    import torch
    import transformers

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        env["device"] = torch.cuda.get_device_name(0)
    return env


def check_parity(work: Path) -> dict[str, Any]:
    """CPU float32 scores and greedy replies of a tiny model, and CUDA's differences from them."""
    from progressgym.backends.hf import HFBackend
    from progressgym.tiny import DEFAULT_TINY_CORPUS, build_tiny_model

    model = build_tiny_model(work / "tiny", corpus=DEFAULT_TINY_CORPUS, seed=0)
    score = [ScoreRequest(user(q), ("Yes", "No", "It depends on the harm.")) for q in QUESTIONS]
    generate = [GenerateRequest(user(q), max_new_tokens=16) for q in QUESTIONS]
    with HFBackend(str(model), BackendOptions(device="cpu", dtype="float32")) as cpu:
        cpu_scores, cpu_replies = cpu.score(score), cpu.generate(generate)
    out: dict[str, Any] = {
        "prompts": len(QUESTIONS),
        "cpu_replies_nonempty": sum(bool(r) for r in cpu_replies),
    }
    reason = cuda_reason()
    if reason:
        out["cuda"] = reason
        return out
    for dtype in ("float32", "bfloat16"):
        with HFBackend(str(model), BackendOptions(device="cuda", dtype=dtype)) as gpu:
            scores, replies = gpu.score(score), gpu.generate(generate)
        diff = max(
            abs(a - b) for r1, r2 in zip(scores, cpu_scores, strict=True) for a, b in zip(r1, r2, strict=True)
        )
        out[dtype] = {
            "max_abs_loglik_diff": diff,
            "greedy_same": sum(a == b for a, b in zip(replies, cpu_replies, strict=True)),
            "greedy_total": len(replies),
        }
    return out


def _bank(bank_path: str | None) -> tuple[Any, str]:
    from progressgym.evaluation.banks import load_bank, load_core_bank

    if bank_path and Path(bank_path).is_dir():
        return load_bank("progressgym", path=bank_path, split="all", allow_partial=True), "progressgym"
    return load_core_bank(), "core"


def _llama3_sized_tokenizer(texts: Sequence[str], out: Path) -> Any:
    from progressgym.twin import save_twin_tokenizer

    return save_twin_tokenizer(out, corpus=texts, merges=30_000)


def check_cost(work: Path, *, bank_path: str | None, budget_s: float) -> dict[str, Any]:
    """Token counts of one evaluation with a Llama-3-sized tokenizer; with CUDA, 8B scoring speed."""
    from progressgym.backends import _chat
    from progressgym.evaluation.prompts import bank_prompts
    from progressgym.evaluation.scoring import chunk_bounds

    bank, name = _bank(bank_path)
    prompts = bank_prompts(bank)
    texts = [p.text for p in prompts]
    start = time.perf_counter()
    folder = work / "llama3-8b-random"
    tokenizer = _llama3_sized_tokenizer(texts, folder)
    chars = sum(len(t) for t in texts)
    tokens = sum(len(_chat.encode_prompt(tokenizer, p.conversation)) for p in prompts[:2000])
    sample_chars = sum(len(t) for t in texts[:2000])
    out: dict[str, Any] = {
        "bank": name,
        "scenarios": len(bank),
        "prompts": len(prompts),
        "prompt_chars": chars,
        "chars_per_token": round(sample_chars / max(tokens, 1), 3),
        "tokenizer_seconds": round(time.perf_counter() - start, 1),
        "readme_estimate_s": list(README_ESTIMATE_S),
    }
    reason = cuda_reason()
    if reason:
        out["cuda"] = reason
        return out
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from progressgym.backends import hf

    config = LlamaConfig(**LLAMA3_8B, rope_parameters={"rope_type": "default", "rope_theta": 500_000.0})
    config.save_pretrained(folder)
    built = time.perf_counter()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(torch.float32)
    held = {"model": model}
    torch.cuda.synchronize()
    out["build_seconds"] = round(time.perf_counter() - built, 1)

    class _InMemory:
        @staticmethod
        def from_pretrained(*args: Any, **kwargs: Any) -> Any:
            return held["model"]

    original = hf.AutoModelForCausalLM
    hf.AutoModelForCausalLM = _InMemory  # type: ignore[misc,assignment]
    try:
        backend = hf.HFBackend(str(folder), BackendOptions(device="cuda", dtype="bfloat16", batch_size=32))
    finally:
        hf.AutoModelForCausalLM = original  # type: ignore[misc]
    done, began = 0, time.perf_counter()
    for lo, hi in chunk_bounds(prompts, 256):
        backend.score([ScoreRequest(p.conversation, p.candidates) for p in prompts[lo:hi]])
        done = hi
        if time.perf_counter() - began > budget_s:
            break
    torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    scale = len(prompts) / done
    per_official = OFFICIAL_SCENARIOS / len(bank)
    out.update(
        {
            "prompts_scored": done,
            "scoring_seconds": round(seconds, 2),
            "forward_tokens": backend.usage.forward_tokens,
            "tokens_per_s": round(backend.usage.forward_tokens / seconds),
            "projected_bank_seconds": round(seconds * scale, 1),
            "projected_official_seconds": round(seconds * scale * per_official, 1),
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
        }
    )
    backend.close()
    held.clear()
    del model
    torch.cuda.empty_cache()
    return out


def check_follow(work: Path) -> dict[str, Any]:
    """A Follow run on a HistLlama3 twin with ``hf`` on CUDA (skipped without CUDA)."""
    reason = cuda_reason()
    if reason:
        return {"cuda": reason}
    from progressgym.evaluation.banks import core_files
    from progressgym.evaluation.items import scenario_from_record
    from progressgym.registration import make_examinee, make_judge
    from progressgym.runner import run_episode
    from progressgym.twin import build_histllama3_twin

    start = time.perf_counter()
    twin = build_histllama3_twin(work / "twin")
    built = time.perf_counter() - start
    kept: dict[str, int] = {}
    lines = []
    for file in core_files():
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                stratum = scenario_from_record(json.loads(line)).stratum
                if kept.get(stratum, 0) < 2:
                    kept[stratum] = kept.get(stratum, 0) + 1
                    lines.append(line)
    bank = work / "bank.jsonl"
    bank.write_text("\n".join(lines) + "\n", encoding="utf-8")
    judge = make_judge(
        "follow", timeline="histllama3-8b", model_dir=str(twin), bank=str(bank), device="cuda", backend="hf"
    )
    began = time.perf_counter()
    result = run_episode(judge, make_examinee("static"), seed=0, run_dir=work / "follow-run")
    return {
        "twin_build_seconds": round(built, 1),
        "run_seconds": round(time.perf_counter() - began, 1),
        "steps": len(result.steps),
        "score": result.score,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the checks and write ``gpu_check.json`` and ``gpu_check.txt`` under ``--out``."""
    parser = argparse.ArgumentParser(
        prog="python -m progressgym.gpu_check", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu_check_out", help="output folder")
    parser.add_argument("--parts", default="parity,cost,follow", help="comma-separated parts to run")
    parser.add_argument("--bank-path", help="folder of ProgressGym's official item files (else: core bank)")
    parser.add_argument("--cost-budget", type=float, default=240.0, help="most seconds of 8B scoring")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"environment": _environment()}
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    with tempfile.TemporaryDirectory(prefix="pg-gpu-check-") as tmp:
        for part in parts:
            began = time.perf_counter()
            try:
                if part == "parity":
                    report[part] = check_parity(Path(tmp))
                elif part == "cost":
                    report[part] = check_cost(Path(tmp), bank_path=args.bank_path, budget_s=args.cost_budget)
                elif part == "follow":
                    report[part] = check_follow(Path(tmp))
                else:
                    report[part] = {"error": "unknown part (parity, cost, follow)"}
            except Exception as exc:  # noqa: BLE001 - one failing part must not hide the others' figures
                report[part] = {"error": f"{type(exc).__name__}: {exc}"}
            report[part]["wall_seconds"] = round(time.perf_counter() - began, 1)
            (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [f"{part}: {json.dumps(report[part])}" for part in ("environment", *parts)]
    (out / "gpu_check.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 1 if any("error" in report[p] for p in parts) else 0


if __name__ == "__main__":
    raise SystemExit(main())
