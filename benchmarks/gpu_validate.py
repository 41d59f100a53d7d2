"""GPU batch times (gpu-profile, aiconfigurator-core) against the paper's measured fit, and the
error of tabulating them for the fast core.

    PYTHONPATH=src python benchmarks/gpu_validate.py      # needs the gpu extra; about a minute

1. The paper fitted t(b) = 11.28 ms + 35.47 ms * ceil(b / 128) to CodeLlama-34B on one A100 80GB
   (spec section 1). aiconfigurator-core does not bundle CodeLlama-34B; its architecture (the
   public config.json numbers below) is written to a temporary folder, which the package reads.
   Each load b is split by the Fig. 1 token mix (129 prefill : 112 decode, decode context
   m_p + (m_d + 1) / 2), as the planner's table does. Prints both and the relative error.
2. The planner's approximation: goodput with the composition model tabulated by token load
   (fast core) against the composition model itself (engine core), Llama-3.1-8B on H100.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from llmqueue.engine.batch_time import mix_composition, paper_staircase
from llmqueue.engine.gpu_profile import GpuProfileBatchTime, gpu_extra_available

#: CodeLlama-34B's architecture (Hugging Face config.json of codellama/CodeLlama-34b-hf).
CODELLAMA_34B = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8192,
                 "intermediate_size": 22016, "num_hidden_layers": 48, "num_attention_heads": 64,
                 "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 16384,
                 "rope_theta": 1000000, "rms_norm_eps": 1e-05, "torch_dtype": "bfloat16", "hidden_act": "silu",
                 "tie_word_embeddings": False}


def main() -> int:
    if not gpu_extra_available():
        print("needs the gpu extra: pip install 'llmqueue[gpu]'")
        return 2
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "config.json").write_text(json.dumps(CODELLAMA_34B))
        gpu = GpuProfileBatchTime(d, "a100", "vllm", 1)
        paper = paper_staircase()
        print("CodeLlama-34B, A100, Fig. 1 token mix: load b, paper fit (ms), gpu-profile (ms), error")
        worst = 0.0
        for b in (128, 256, 384, 512, 640, 768, 1024):
            t_p = paper.load_time(b) * 1e3
            t_g = gpu.duration(*mix_composition(b, 129, 112)) * 1e3
            err = (t_g - t_p) / t_p
            worst = max(worst, abs(err))
            print(f"  {b:5d}  {t_p:8.2f}  {t_g:8.2f}  {100 * err:+6.1f}%")
        print(f"worst relative error {100 * worst:.1f}%")
    from llmqueue.lab.plan import PlanSpec, build_engine, goodput, probe
    bt = {"model": "gpu-profile", "model_id": "llama-3.1-8b", "gpu": "h100"}
    print("tabulated (fast core) vs exact composition (engine core), Llama-3.1-8B on H100, Fig. 1 lengths:")
    for pol, budget in (("sarathi", 256), ("sarathi", 512), ("orca", 512)):
        specs = [PlanSpec("fig1", overrides={"engine.batch_time": bt}, slos={"p99_ttft_ms": 100.0,
                          "p99_tpot_ms": 25.0}, num_requests=1000, exact_batch_time=exact) for exact in (False, True)]
        engines = [build_engine(s, {"policy": pol, "token_budget": budget}) for s in specs]
        rates = [goodput(s, e)["max_rate"] for s, e in zip(specs, engines)]
        at = 0.8 * engines[0].lambda_star
        lat = [probe(s, e, at)[1] for s, e in zip(specs, engines)]
        print(f"  {pol} b{budget}: goodput tabulated {rates[0]:.4g}, exact {rates[1]:.4g} req/s "
              f"({100 * (rates[0] - rates[1]) / rates[1]:+.2f}%); at 0.8 lambda* p99 TTFT "
              f"{lat[0]['p99_ttft_ms']:.1f} vs {lat[1]['p99_ttft_ms']:.1f} ms, p99 TPOT "
              f"{lat[0]['p99_tpot_ms']:.2f} vs {lat[1]['p99_tpot_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
