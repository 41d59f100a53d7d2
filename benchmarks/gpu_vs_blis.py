"""GPU batch times (gpu-profile, aiconfigurator-core) against another simulator's published linear
step-time coefficients for the same model and GPU.

    PYTHONPATH=src python benchmarks/gpu_vs_blis.py      # needs the gpu extra; a few seconds

BLIS (the inference-sim project's blackbox latency model) publishes, per model, GPU and tensor
parallelism, a step time ``beta0 + beta1 * prefill_tokens + beta2 * decode_tokens`` in
microseconds, fitted by its authors to real vLLM v0.8.4 step times (defaults.yaml of
github.com/inference-sim/inference-sim; the glossary defines prefill tokens as cache-miss tokens).
The numbers below are those published coefficients for meta-llama/llama-3.1-8b-instruct.

The two sources are independent: aiconfigurator-core sums per-kernel GPU benchmarks (no host
overhead); BLIS's fit to whole vLLM steps folds the scheduler and host time into beta0. The
comparison therefore prints the error over three kinds of batch (prefill only, decode only at a
1,024-token context, mixed) and the part that a constant host overhead explains: the error left
after the best constant shift (the median of the differences) is removed.
"""

from __future__ import annotations

import sys

import numpy as np

from llmqueue.engine.gpu_profile import GpuProfileBatchTime, gpu_extra_available

#: (gpu, tp) -> (beta0, beta1, beta2) in microseconds, llama-3.1-8b-instruct, vLLM v0.8.4 (BLIS)
BLIS_LLAMA_31_8B = {
    ("h100", 1): (5752.705191348184, 17.25086436834028, 5.999143920128404),
    ("h100", 2): (6910.420479880494, 17.67057489844186, 2.8377471109943855),
    ("a100", 1): (16441.531547147923, 47.837412108198656, 18.20560632171683),
    ("a100", 2): (8001.630597822392, 26.362876080324924, 14.969035206354745),
}

CONTEXT = 1024          # tokens of context per decode
BATCHES = ([(p, 0) for p in (256, 512, 1024, 2048)]                     # prefill only
           + [(0, d) for d in (16, 32, 64, 128, 256)]                   # decode only
           + [(p, d) for p, d in ((256, 32), (512, 64), (512, 128))])   # mixed


def blis_ms(beta: tuple[float, float, float], p: int, d: int) -> float:
    return (beta[0] + beta[1] * p + beta[2] * d) / 1e3


def main() -> int:
    if not gpu_extra_available():
        print("needs the gpu extra: pip install 'llmqueue[gpu]'")
        return 2
    print(f"Llama-3.1-8B, vLLM back end, decodes at a {CONTEXT}-token context: step time in ms")
    summary = []
    for (gpu, tp), beta in BLIS_LLAMA_31_8B.items():
        model = GpuProfileBatchTime("llama-3.1-8b", gpu, "vllm", tp)
        print(f"\n{gpu} TP{tp}: batch (prefill, decodes), BLIS, gpu-profile, relative error")
        ours, theirs = [], []
        for p, d in BATCHES:
            t_b = blis_ms(beta, p, d)
            t_g = model.duration(p, d, p + d * CONTEXT) * 1e3
            ours.append(t_g)
            theirs.append(t_b)
            print(f"  ({p:4d}, {d:3d})  {t_b:8.2f}  {t_g:8.2f}  {100 * (t_g - t_b) / t_b:+7.1f}%")
        g, b = np.array(ours), np.array(theirs)
        rel = np.abs(g - b) / b
        shift = float(np.median(b - g))
        rel_shifted = np.abs(g + shift - b) / b
        summary.append((gpu, tp, 100 * rel.mean(), 100 * rel.max(), shift, 100 * rel_shifted.mean(),
                        100 * rel_shifted.max()))
    print("\nsummary: gpu, TP, mean |error| %, worst %, constant host shift (ms), after the shift: mean %, worst %")
    for gpu, tp, mean, worst, shift, mean_s, worst_s in summary:
        print(f"  {gpu} TP{tp}: {mean:6.1f} {worst:6.1f}   shift {shift:+6.2f}   {mean_s:6.1f} {worst_s:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
