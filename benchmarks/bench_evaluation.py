"""Cost of one moral evaluation: our shared-prefix scorer against the naive one, in one run.

Scores ProgressGym's official items (all splits, every format, cyclic orders) with a tiny model twice:

* ours: :func:`progressgym.evaluation.scoring.logprob_distributions` through ``HFBackend.score`` (one request
  per prompt; the backend runs each prompt once for all its candidates and shares common prefixes);
* naive: ``HFBackend.loglikelihood_naive``, one full forward pass per prompt and candidate.

It prints prompts, candidate scorings, forward tokens and seconds for each, their ratios, and the largest
difference between the two scorers' log-likelihoods.

    python benchmarks/bench_evaluation.py                       # all 1,818 scenarios
    python benchmarks/bench_evaluation.py --limit 100           # a quick run on 100 scenarios
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from progressgym.backends import BackendOptions, ScoreRequest
from progressgym.backends.hf import HFBackend
from progressgym.evaluation.banks import load_bank
from progressgym.evaluation.items import ItemBank
from progressgym.evaluation.prompts import bank_prompts
from progressgym.evaluation.scoring import CHUNK_SIZE, chunk_bounds, softmax
from progressgym.tiny import DEFAULT_TINY_CORPUS, build_tiny_model

DEFAULT_BANK_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "progressgym-moralevals"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bank-path", default=str(DEFAULT_BANK_PATH), help="directory of the official CSV files"
    )
    parser.add_argument("--limit", type=int, help="only N scenarios, spread evenly over the bank")
    parser.add_argument("--orders", default="cyclic", choices=["cyclic", "all"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    parser.add_argument("--model", help="a model directory (default: build a tiny model)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    bank = load_bank("progressgym", path=args.bank_path, split="all")
    if args.limit:
        step = max(1, len(bank) // args.limit)  # spread over the bank, so every family is in the sample
        bank = ItemBank(bank.name, bank.version, bank.scenarios[::step][: args.limit], split=bank.split)
    prompts = bank_prompts(bank, orders=args.orders)
    requests = [ScoreRequest(p.conversation, p.candidates) for p in prompts]
    scorings = sum(len(r.candidates) for r in requests)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or str(
            build_tiny_model(Path(tmp) / "tiny", corpus=DEFAULT_TINY_CORPUS, seed=0)
        )
        backend = HFBackend(model_dir, BackendOptions(device="cpu", batch_size=args.batch_size))
        print(
            f"bank {bank.key}: {len(bank)} scenarios, {len(prompts)} prompts, {scorings} candidate scorings"
        )
        print(f"model {model_dir}; torch threads {torch.get_num_threads()}; batch size {args.batch_size}")

        rows = {}
        results = {}
        for name in ("ours", "naive"):
            backend.usage.reset()
            start = time.perf_counter()
            if name == "ours":
                out = []  # the same calls as progressgym.evaluation.scoring.logprob_distributions
                for begin, end in chunk_bounds(prompts, CHUNK_SIZE):
                    out.extend(backend.score(requests[begin:end]))
            else:
                out = backend.loglikelihood_naive(requests)
            seconds = time.perf_counter() - start
            rows[name] = (backend.usage.prompts, scorings, backend.usage.forward_tokens, seconds)
            results[name] = out
            print(f"{name}: {backend.usage.forward_tokens:,} forward tokens in {seconds:.2f} s", flush=True)
        backend.close()

    diff = max(
        abs(a - b)
        for x, y in zip(results["ours"], results["naive"], strict=True)
        for a, b in zip(x, y, strict=True)
    )
    pdiff = max(
        float(abs(softmax(x) - softmax(y)).max())
        for x, y in zip(results["ours"], results["naive"], strict=True)
    )
    print()
    print(f"{'scorer':<8} {'prompts':>8} {'scorings':>9} {'forward tokens':>15} {'seconds':>9}")
    for name, (n_prompts, n_scorings, tokens, seconds) in rows.items():
        print(f"{name:<8} {n_prompts:>8} {n_scorings:>9} {tokens:>15,} {seconds:>9.2f}")
    ours, naive = rows["ours"], rows["naive"]
    print(
        f"{'ratio':<8} {'':>8} {'':>9} {ours[2] / naive[2]:>14.3f}x {ours[3] / naive[3]:>8.3f}x"
        f"   (ours is {naive[3] / ours[3]:.2f}x faster)"
    )
    print(f"largest log-likelihood difference {diff:.2e}; largest probability difference {pdiff:.2e}")


if __name__ == "__main__":
    main()
