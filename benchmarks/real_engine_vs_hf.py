"""Real engine throughput at full batch against Hugging Face transformers' ``generate`` in static
batches, same model, same weights, same machine; plus a cross-check that both compute the same.

The workload is offline: ``--requests`` requests of ``--prompt`` prompt tokens and ``--decode``
decode tokens all present at time 0 (so the real engine's batches are full: Sarathi-Serve with
token budget ``--budget``). transformers generates ``decode + 1`` new tokens per request (the
first comes from the prefill pass, as in our engine), so both do ``prompt + decode`` token-passes
per request, and throughput is (prompt + decode) tokens per second for both. Each side is timed
``--repeats`` times, alternating, after one warm-up; the ratio of the medians is reported, and
the median and range of the per-pair ratios (neighbouring runs share the machine's mood).

transformers is a benchmark-only dependency: without it the script says so and stops.

    python benchmarks/real_engine_vs_hf.py --model small --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from llmqueue import Request, make_policy
from llmqueue.real.checkpoint import load_model
from llmqueue.real.device import describe, resolve_device, resolve_dtype, set_threads
from llmqueue.real.runner import ModelRunner
from llmqueue.real.serve import serve
from llmqueue.real.tokens import prompt_ids


def hf_copy(model):
    try:
        import transformers
    except ModuleNotFoundError:
        sys.exit("transformers is not installed (pip install transformers): it is only needed by this benchmark")
    d = {k: v for k, v in model.cfg.to_hf().items() if k not in ("architectures", "model_type", "torch_dtype")}
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**d))
    hf.load_state_dict(model.state_dict(), strict=True)
    hf.generation_config.eos_token_id = None       # never stop early: exactly max_new_tokens
    hf.generation_config.pad_token_id = 0
    return hf.to(device=model.device, dtype=model.dtype).eval(), transformers.__version__


def ours(model, requests, budget):
    runner = ModelRunner(model, num_blocks=4096)
    t = time.perf_counter()
    res = serve(make_policy("sarathi", budget), requests, runner)
    dt = time.perf_counter() - t
    return res.tokens_processed / dt, runner


@torch.inference_mode()
def theirs(hf, prompts, decode, batch):
    t = time.perf_counter()
    outs = []
    for i in range(0, len(prompts), batch):
        ids = torch.tensor(prompts[i:i + batch], device=hf.device)
        out = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=decode + 1,
                          do_sample=False)
        outs.extend(out[:, ids.shape[1]:].tolist())
    dt = time.perf_counter() - t
    return sum(len(p) + decode for p in prompts) / dt, outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="small")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--budget", type=int, default=256, help="our token budget")
    ap.add_argument("--hf-batch", type=int, default=32, help="transformers' static batch size")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", type=str, default=None, help="also write the result here")
    args = ap.parse_args()
    dev = resolve_device(args.device)
    dt = resolve_dtype(None, dev)
    set_threads(args.threads)
    model = load_model(args.model, seed=0, device=dev, dtype=dt)
    hf, hf_version = hf_copy(model)
    reqs = [Request(i, 0.0, args.prompt, args.decode) for i in range(args.requests)]
    prompts = [prompt_ids(i, args.prompt, model.cfg.vocab_size, 0) for i in range(args.requests)]

    # correctness: same logits, same greedy tokens
    with torch.inference_mode():
        ids = torch.tensor(prompts[0], device=dev)
        diff = (hf(ids[None]).logits[0].float() - model.dense_logits(ids)).abs().max().item()
    _, runner = ours(model, reqs[:4], args.budget)
    _, hf_out = theirs(hf, prompts[:4], args.decode, 4)
    same_tokens = all(runner.outputs[i] == hf_out[i] for i in range(4))

    # throughput, alternating
    ours(model, reqs[:8], args.budget)
    theirs(hf, prompts[:8], args.decode, 8)
    a, b = [], []
    for _ in range(args.repeats):
        a.append(ours(model, reqs, args.budget)[0])
        b.append(theirs(hf, prompts, args.decode, args.hf_batch)[0])
    ra, rb = statistics.median(a), statistics.median(b)
    pairs = [x / y for x, y in zip(a, b)]
    result = {"model": model.cfg.describe(), "device": describe(dev, dt), "transformers": hf_version,
              "torch": torch.__version__, "workload": vars(args), "max_abs_logit_diff": diff,
              "same_greedy_tokens": same_tokens, "ours_tokens_per_s": a, "hf_tokens_per_s": b,
              "ours_median": ra, "hf_median": rb, "ratio_ours_over_hf": ra / rb,
              "paired_ratios": pairs, "paired_ratio_median": statistics.median(pairs),
              "paired_ratio_range": [min(pairs), max(pairs)]}
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
