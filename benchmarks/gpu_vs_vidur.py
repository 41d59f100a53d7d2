"""GPU batch times (gpu-profile, aiconfigurator-core) against Vidur's published per-operation GPU
profiles for the same model and GPU: the token-linear part of one iteration.

    PYTHONPATH=src python benchmarks/gpu_vs_vidur.py      # needs the gpu extra; a few seconds

Vidur (github.com/microsoft/vidur, MIT) publishes per-layer kernel times measured on real GPUs,
per token count and tensor-parallel degree, in data/profiling/compute/<gpu>/<model>/mlp.csv, and
composes an iteration as (per-layer op sum) x layers + attention + communication + CPU overhead.
benchmarks/data/vidur_llama3_8b_a100.json holds the median columns of that table for
Meta-Llama-3-8B on A100 (TP1, TP2) at the token counts used below; its "source" field names the
commit and file. Llama-3-8B and the Llama-3.1-8B of aiconfigurator-core have the same shapes.

What is compared, per batch (prefill tokens, decodes), for all 32 layers:

- GEMMs: Vidur's attn_pre_proj + attn_post_proj + mlp_up_proj + mlp_down_proj against
  gpu-profile's qkv, o-projection, gate/up (ffn1) and down (ffn2) GEMMs;
- elementwise: Vidur's input_layernorm + post_attention_layernorm + add + attn_rope + mlp_act
  against gpu-profile's two fused add+RMSNorm ops and the SiLU-and-multiply op (it has no separate
  RoPE op: RoPE is inside its attention op).

Both sides key these ops by the batch's token count (prefill tokens + decodes), so the KV context
(1,024 tokens per decode here) does not enter them. Left out on both sides: attention kernels
(Vidur's attention.csv was not in the snapshot available to us, so no prefill/decode attention
times), the embedding, the logits GEMM and sampling, the tensor-parallel all-reduces (Vidur keeps
them in separate network tables) and host/CPU overhead. The last column is gpu-profile's whole
iteration time, for scale: the compared part is most of a prefill, less of a long-context decode.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from llmqueue.engine.gpu_profile import GpuProfileBatchTime, gpu_extra_available

DATA = Path(__file__).parent / "data" / "vidur_llama3_8b_a100.json"
LAYERS = 32
CONTEXT = 1024          # tokens of context per decode (only the full-iteration column depends on it)
BATCHES = ([(p, 0) for p in (128, 256, 512, 1024, 2048, 4096)]           # prefill only, one request
           + [(0, d) for d in (8, 32, 128)]                               # decode only
           + [(256, 32), (512, 32), (1024, 128)])                         # mixed

#: op group -> (Vidur's ops, gpu-profile's ops, names without the context_/generation_ prefix)
GROUPS = {
    "qkv": (("attn_pre_proj",), ("qkv_gemm",)),
    "o": (("attn_post_proj",), ("proj_gemm",)),
    "up": (("mlp_up_proj",), ("gate_ffn1_gemm",)),
    "down": (("mlp_down_proj",), ("ffn2_gemm",)),
    "act": (("mlp_act",), ("act_gate",)),
    "norm": (("input_layernorm", "post_attention_layernorm", "add", "attn_rope"), ("add_norm_1", "add_norm_2")),
}
GEMMS = ("qkv", "o", "up", "down")


def vidur_ms(data: dict, tp: int, tokens: int) -> dict[str, float]:
    """Vidur's time per op group for one iteration (all layers), in ms."""
    row = dict(zip(data["ops"], data["tp"][str(tp)][str(tokens)]))
    return {g: LAYERS * sum(row[op] for op in ours) for g, (ours, _) in GROUPS.items()}


def gpu_profile_ms(model: GpuProfileBatchTime, p: int, d: int) -> tuple[dict[str, float], float]:
    """gpu-profile's time per op group (all layers) and its whole iteration time, in ms. The per-op
    query mirrors the one GpuProfileBatchTime.duration makes; their sums are checked to agree."""
    h = model.handle()
    if d == 0:
        ops = [o for part in h.mixed_step_breakdown_per_op(p, 0, p, 2) for o in part]
    elif p == 0:
        ops = h.decode_step_per_op(d, CONTEXT - 2, 2)
    else:
        ops = [o for part in h.mixed_step_breakdown_per_op(p, d, CONTEXT - 2, 2) for o in part]
    by_name: dict[str, float] = {}
    for name, ms, *_ in ops:
        key = name.split("_", 1)[1]
        by_name[key] = by_name.get(key, 0.0) + float(ms)
    total = model.duration(p, d, p + d * CONTEXT) * 1e3
    if abs(sum(by_name.values()) - total) > 1e-6 * total:
        raise RuntimeError(f"per-op sum {sum(by_name.values()):.4f} != duration {total:.4f} ms for ({p}, {d})")
    return {g: sum(by_name.get(op, 0.0) for op in theirs) for g, (_, theirs) in GROUPS.items()}, total


def rel(a: float, b: float) -> float:
    return (a - b) / b


def main() -> int:
    if not gpu_extra_available():
        print("needs the gpu extra: pip install 'llmqueue[gpu]'")
        return 2
    data = json.loads(DATA.read_text())
    print("Llama-3(.1)-8B on A100, vLLM back end: token-linear ops of one iteration (32 layers), ms;")
    print(f"errors are gpu-profile relative to Vidur; decodes at a {CONTEXT}-token context")
    summary = []
    for tp in sorted(int(t) for t in data["tp"]):
        model = GpuProfileBatchTime("llama-3.1-8b", "a100", "vllm", tp)
        print(f"\na100 TP{tp}: batch (prefill, decodes) | GEMMs: Vidur, gpu-profile, error | elementwise: "
              "Vidur, gpu-profile, error | total error | gpu-profile whole iteration")
        errs: dict[str, list[float]] = {g: [] for g in GROUPS}
        gemm, elem, total = [], [], []
        for p, d in BATCHES:
            v = vidur_ms(data, tp, p + d)
            g, whole = gpu_profile_ms(model, p, d)
            for k in GROUPS:
                errs[k].append(rel(g[k], v[k]))
            vg, gg = sum(v[k] for k in GEMMS), sum(g[k] for k in GEMMS)
            ve, ge = sum(v.values()) - vg, sum(g.values()) - gg
            gemm.append(rel(gg, vg))
            elem.append(rel(ge, ve))
            total.append(rel(gg + ge, vg + ve))
            print(f"  ({p:4d}, {d:3d})  {vg:7.2f} {gg:7.2f} {100 * gemm[-1]:+6.1f}%   {ve:6.2f} {ge:6.2f} "
                  f"{100 * elem[-1]:+6.1f}%   {100 * total[-1]:+6.1f}%   {whole:7.2f}")
        print("  per op group, mean signed error over the batches: "
              + ", ".join(f"{k} {100 * np.mean(e):+.1f}%" for k, e in errs.items()))
        summary.append((tp, *(100 * np.abs(np.array(x)) for x in (total, gemm, elem))))
    print("\nsummary: GPU, TP, mean |error| % and worst %: of the token-linear total, of the GEMMs, "
          "of the elementwise ops")
    for tp, t, gm, el in summary:
        print(f"  a100 TP{tp}: total {t.mean():5.1f} {t.max():5.1f}   GEMMs {gm.mean():5.1f} {gm.max():5.1f}   "
              f"elementwise {el.mean():5.1f} {el.max():5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
