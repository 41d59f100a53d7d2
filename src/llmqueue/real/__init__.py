"""A real PyTorch inference engine driven by llmqueue's scheduling policies.

The engine runs a Llama-style decoder (:mod:`.model`) with a paged KV cache (:mod:`.kv_cache`);
every iteration executes ONE forward pass over the batch that a policy from
:mod:`llmqueue.policies` planned (:mod:`.runner`), in wall-clock time (:mod:`.serve`). The
profiler (:mod:`.profiling`) measures iteration times, :mod:`.fit` fits the batch-time models to
them, and :mod:`.profiles` stores the fit as a hardware profile the simulator loads by name.

Importing this package does not import torch: the profile store, the fits and the comparison of
runs work without it, and the torch-backed modules say how to install it when it is missing.
"""

TORCH_HINT = 'the real engine needs PyTorch: pip install -e ".[real]"'
