"""A Llama-style decoder: embeddings, N x (RMSNorm, GQA attention, RMSNorm, SwiGLU), RMSNorm, LM head.

Parameter names equal Hugging Face's ``LlamaForCausalLM`` state-dict keys, so checkpoints load
without renaming and our weights can be copied into transformers for a cross-check.
:meth:`Llama.forward` runs one flattened mixed batch against the paged cache;
:meth:`Llama.dense_logits` runs one sequence alone without a cache (the reference).
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

from .attention import Attention, Workspace
from .batch import FlatBatch
from .config import ModelConfig
from .layers import RMSNorm, Rotary, SwiGLU


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg, layer)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = SwiGLU(cfg)


class Body(nn.Module):
    """Embeddings, layers and final norm (``model.*`` in Hugging Face's naming)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg, i) for i in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.rotary = Rotary(cfg)


class Llama(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = Body(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.workspace = Workspace()
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    def forward(self, batch: FlatBatch, k_cache: torch.Tensor, v_cache: torch.Tensor,
                block_size: int) -> torch.Tensor:
        """Logits ``[sampled rows, vocab]`` (float32) of one flattened batch; writes its KV into
        ``k_cache``/``v_cache`` ``[layers, kv_heads, slots, head_dim]``."""
        m = self.model
        x = m.embed_tokens(batch.input_ids)
        cos, sin = m.rotary.tables(batch.positions, x.dtype)
        for i, layer in enumerate(cast("list[DecoderLayer]", m.layers)):
            x = x + layer.self_attn(layer.input_layernorm(x), cos, sin, batch, k_cache[i], v_cache[i],
                                     block_size, self.workspace)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        x = x[batch.sample_index]
        return self.lm_head(m.norm(x)).float()

    def dense_logits(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Logits ``[n, vocab]`` (float32) of one sequence run alone from position 0, no cache."""
        m = self.model
        x = m.embed_tokens(token_ids)
        cos, sin = m.rotary.tables(torch.arange(len(token_ids), device=x.device), x.dtype)
        for layer in cast("list[DecoderLayer]", m.layers):
            x = x + layer.self_attn.dense(layer.input_layernorm(x), cos, sin)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.lm_head(m.norm(x)).float()


def build_model(cfg: ModelConfig, seed: int = 0, device: torch.device | str = "cpu",
                dtype: torch.dtype = torch.float32) -> Llama:
    """A model with random weights drawn from ``seed`` (same seed, same weights, on any device).

    Linear weights ~ N(0, 1/fan_in) and embeddings ~ N(0, 1) keep activations of order one, so
    logits are spread out and greedy choices are not near-ties; norm weights are 1 + N(0, 0.1^2)
    so that a wrongly applied norm weight shows in the cross-checks.
    """
    gen = torch.Generator().manual_seed(seed)
    model = Llama(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
    return model.to(device=device, dtype=dtype).eval()
