"""The inspect_ai task runs end to end on inspect's mock model and reports progressgym's generate-mode vector."""

import numpy as np
import pytest
from scripted_models import ScriptedBackend, keeps_rules, parse_prompt, prefers_view, utility_table

from progressgym.backends.base import Backend, GenerateRequest
from progressgym.evaluation.banks import export_bank, load_bank
from progressgym.evaluation.evaluator import evaluate_with_backend
from progressgym.evaluation.items import ItemBank
from progressgym.integrations.answers import DIMENSION_KEYS

pytest.importorskip("inspect_ai", reason="needs the inspect extra: pip install 'progressgym[inspect]'")


def _sample(bank: ItemBank, per_stratum: int = 1) -> ItemBank:
    kept: dict[str, list] = {}
    for scenario in bank:
        members = kept.setdefault(scenario.stratum, [])
        if len(members) < per_stratum:
            members.append(scenario)
    return ItemBank("core-sample", bank.version, tuple(s for m in kept.values() for s in m), split=bank.split)


def _replier(bank: ItemBank):
    """A deterministic model reading only the prompt text: keeps rules, likes the modern worldview, answers in
    varied styles, refuses some prompts and garbles others."""
    table = utility_table(bank, lambda s, a: keeps_rules(s, a) + prefers_view("modern")(s, a))
    styler = ScriptedBackend(utility=lambda c, o: table.get((c, o), 0.0))

    def reply(text: str) -> str:
        context, options, fmt = parse_prompt(text)
        key = sum(map(ord, text))
        if key % 11 == 0:
            return "As an AI language model, I cannot choose between these options."
        if key % 13 == 0:
            return "The weather is lovely today."
        best = max(range(len(options)), key=lambda i: table.get((context, options[i]), 0.0))
        styler.reply_style = key % 5
        return styler._reply(fmt, options, best)

    return reply


class _Replying(Backend):
    name = "replying"

    def __init__(self, reply):
        super().__init__("replying")
        self.reply = reply

    def _generate(self, requests: list[GenerateRequest]) -> list[str]:
        return [self.reply(r.prompt[-1].content) for r in requests]

    def _score(self, requests):
        raise AssertionError("generate mode never scores")


def test_inspect_task_reports_progressgym_generate_vector(tmp_path):
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    from progressgym.integrations.inspect.task import progressgym_values

    bank = _sample(load_bank("core", split="evaluation"))
    export = export_bank(bank, tmp_path / "export")
    reply = _replier(bank)

    def outputs(messages, tools, tool_choice, config):
        output = ModelOutput.from_content(model="mockllm", content=reply(messages[-1].text))
        # Usage given, so that inspect does not count tokens with a tokenizer it would download.
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return output

    (log,) = inspect_eval(
        progressgym_values(export=str(export)),
        model=get_model("mockllm/model", custom_outputs=outputs),
        log_dir=str(tmp_path / "logs"),
        display="none",
    )
    assert log.status == "success", log.error
    assert log.eval.task_args.get("export") == str(export) or log.eval.metadata["bank_key"] == bank.key
    metrics = {name: m.value for s in log.results.scores for name, m in s.metrics.items()}
    assert set(DIMENSION_KEYS) <= set(metrics) and len(DIMENSION_KEYS) == 19
    from_inspect = np.array([metrics[k] for k in DIMENSION_KEYS])

    ours = evaluate_with_backend(_Replying(reply), bank, mode="generate", progress=False)
    assert np.max(np.abs(from_inspect - ours.vector)) <= 1e-12
    assert metrics["invalid_rate"] == pytest.approx(ours.invalid_rate)
    assert metrics["refusal_rate"] == pytest.approx(ours.refusal_rate)
    assert 0 < ours.invalid_rate < 0.2 and 0 < ours.refusal_rate < 0.2
    assert metrics["do_not_kill"] > 0.5 and metrics["modern_worldview"] > 0.5


def test_inspect_hf_provider_on_a_tiny_model_replies_as_progressgym_generates(
    tiny_model_dir, tmp_path, monkeypatch
):
    from inspect_ai import eval as inspect_eval

    from progressgym.backends.base import BackendOptions
    from progressgym.backends.hf import HFBackend
    from progressgym.evaluation.scoring import generate_answers
    from progressgym.integrations.answers import prompt_item
    from progressgym.integrations.inspect.task import progressgym_values

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (log,) = inspect_eval(
        progressgym_values(),
        model="hf/tiny",
        model_args={"model_path": str(tiny_model_dir), "device": "cpu", "do_sample": False},
        limit=4,
        log_dir=str(tmp_path / "logs"),
        display="none",
    )
    assert log.status == "success", log.error
    metrics = {name: m.value for s in log.results.scores for name, m in s.metrics.items()}
    assert set(metrics) == {*DIMENSION_KEYS, "invalid_rate", "refusal_rate"}
    # Four prompts measure few dimensions: the vector is undefined (NaN), never zeros.
    assert all(np.isnan(metrics[k]) for k in DIMENSION_KEYS)
    rows = [sample.metadata["prompt"] for sample in log.samples]
    with HFBackend(str(tiny_model_dir), BackendOptions(device="cpu")) as backend:
        ours = generate_answers(backend, [prompt_item(row) for row in rows], progress=False)
    assert [sample.output.completion for sample in log.samples] == ours
