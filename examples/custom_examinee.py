"""A new alignment algorithm: subclass Examinee, give it a config, register it, run it.

``imitate`` asks the judge's present-day model the open question of a few moral scenarios each step and
fine-tunes its own model on the answers (supervised fine-tuning with TRL).

    python examples/custom_examinee.py                           # Follow-v0 on the mini timeline, CPU
    python examples/custom_examinee.py --challenge predict --epochs 2

A package would make it available to ``python -m progressgym.run --algorithm imitate`` with an entry point
in its ``pyproject.toml``::

    [project.entry-points."progressgym.algorithms"]
    imitate = "my_package.imitate:Imitate"
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from progressgym.checker import check_examinee_class
from progressgym.core import Examinee, JudgeInterface, StepInfo
from progressgym.model_ref import ModelRef
from progressgym.preference import scenario_query
from progressgym.registration import make_judge, register_algorithm
from progressgym.runner import run_episode


@dataclass(frozen=True)
class ImitateConfig:
    questions: int = field(default=32, metadata={"help": "moral questions asked per step"})
    max_new_tokens: int = field(default=32, metadata={"help": "length of each answer"})
    epochs: float = field(default=1.0, metadata={"help": "fine-tuning epochs per step"})
    learning_rate: float = field(default=1e-3, metadata={"help": "fine-tuning learning rate"})


@register_algorithm("imitate")
class Imitate(Examinee):
    """Fine-tunes its model, each century, on the present's answers to moral questions."""

    config_cls = ImitateConfig

    def update(self, judge: JudgeInterface, step: StepInfo) -> ModelRef:
        questions = [scenario_query(s) for s in judge.elicitation_scenarios()[: self.config.questions]]
        answers = judge.generate(questions, max_new_tokens=self.config.max_new_tokens)
        out = self.workdir / f"step-{step.step:03d}"  # a rerun of this step replaces it
        self._fine_tune(list(zip(questions, answers, strict=True)), out, seed=step.seed)
        self.model = ModelRef.from_path(out, name=f"imitate/step-{step.step}")
        return self.model

    def _fine_tune(self, pairs: list[tuple[str, str]], out: Path, *, seed: int) -> None:
        import datasets
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl import SFTConfig, SFTTrainer

        tokenizer = AutoTokenizer.from_pretrained(self.current_model.path)
        model = AutoModelForCausalLM.from_pretrained(self.current_model.path)
        data = datasets.Dataset.from_list(
            [
                {
                    "prompt": [{"role": "user", "content": q}],
                    "completion": [{"role": "assistant", "content": a}],
                }
                for q, a in pairs
            ]
        )
        args = SFTConfig(
            output_dir=str(self.workdir / "trainer"),
            num_train_epochs=self.config.epochs,
            learning_rate=self.config.learning_rate,
            per_device_train_batch_size=8,
            seed=seed,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            use_cpu=not torch.cuda.is_available(),
            bf16=torch.cuda.is_available(),
        )
        SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer).train()
        shutil.rmtree(out, ignore_errors=True)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description="Run the imitate examinee through a challenge.")
    parser.add_argument("--challenge", default="follow")
    parser.add_argument("--timeline", default="mini")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--bank", default="core")
    parser.add_argument("--eval-format", action="append")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--out", help="run directory (default: a temporary one)")
    args = parser.parse_args(argv)

    check_examinee_class(Imitate)
    judge = make_judge(
        args.challenge,
        timeline=args.timeline,
        device=args.device,
        bank=args.bank,
        eval_formats=args.eval_format,
    )
    examinee = Imitate(ImitateConfig(epochs=args.epochs))
    result = run_episode(judge, examinee, seed=0, run_dir=args.out, progress=True)
    for s in result.steps:
        print(
            f"C{s.century:03d}: cosine {s.cosine:.4f}, distance {s.distance:.4f}, queries {s.queries.queries}"
        )
    print(f"{result.challenge} imitate: score {result.score:.4f}")
    return result.score


if __name__ == "__main__":
    main()
