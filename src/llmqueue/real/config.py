"""Model shapes: Llama-style size presets and conversion to and from a Hugging Face config.json.

The presets go from ``tiny`` (a fraction of a million parameters, for tests) to ``llama-250m``
(about a quarter of a billion). Weights are not part of a preset: they come from a seed
(:func:`llmqueue.real.model.build_model`) or from a checkpoint folder
(:mod:`llmqueue.real.checkpoint`). No torch needed here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a Llama-style decoder (names follow Hugging Face's LlamaConfig where they exist)."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None
    max_position_embeddings: int = 4096
    tie_word_embeddings: bool = False
    name: str = "custom"

    def __post_init__(self) -> None:
        for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "num_key_value_heads", "intermediate_size", "max_position_embeddings"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"model config: {key} must be a positive integer, got {v!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"model config: hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"model config: num_attention_heads {self.num_attention_heads} is not a "
                             f"multiple of num_key_value_heads {self.num_key_value_heads} (grouped-query attention)")
        if self.head_dim % 2:
            raise ValueError(f"model config: head dimension {self.head_dim} must be even (rotary embeddings)")
        if not (math.isfinite(self.rms_norm_eps) and self.rms_norm_eps > 0):
            raise ValueError(f"model config: rms_norm_eps must be > 0, got {self.rms_norm_eps!r}")
        if not (math.isfinite(self.rope_theta) and self.rope_theta > 0):
            raise ValueError(f"model config: rope_theta must be > 0, got {self.rope_theta!r}")
        if self.rope_scaling is not None:
            kind = self.rope_scaling.get("rope_type", self.rope_scaling.get("type"))
            if kind not in ("llama3", "default"):
                raise ValueError(f"model config: rope_scaling type {kind!r} is not supported "
                                 f"(supported: none, 'default', 'llama3')")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def group_size(self) -> int:
        """Query heads per key/value head."""
        return self.num_attention_heads // self.num_key_value_heads

    @property
    def num_parameters(self) -> int:
        """Weights in the model (embeddings and LM head counted once if tied)."""
        h, kv = self.hidden_size, self.num_key_value_heads * self.head_dim
        layer = 2 * h * h + 2 * h * kv + 3 * h * self.intermediate_size + 2 * h
        emb = self.vocab_size * h
        return self.num_hidden_layers * layer + emb * (1 if self.tie_word_embeddings else 2) + h

    @property
    def kv_bytes_per_token(self) -> int:
        """KV-cache bytes one token takes in float32 (halve for bf16)."""
        return self.num_hidden_layers * 2 * self.num_key_value_heads * self.head_dim * 4

    def describe(self) -> str:
        return (f"{self.name}: {self.num_parameters / 1e6:.1f}M parameters, {self.num_hidden_layers} "
                f"layers, hidden {self.hidden_size}, {self.num_attention_heads} query / "
                f"{self.num_key_value_heads} key-value heads, MLP {self.intermediate_size}, "
                f"vocabulary {self.vocab_size}")

    def to_hf(self) -> dict[str, Any]:
        """A Hugging Face ``config.json`` dictionary for LlamaForCausalLM."""
        d = {k: v for k, v in asdict(self).items() if k != "name"}
        d.update(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
                 attention_bias=False, mlp_bias=False, head_dim=self.head_dim, torch_dtype="float32")
        return d

    @classmethod
    def from_hf(cls, d: dict[str, Any], name: str = "checkpoint") -> ModelConfig:
        """Read the Llama fields of a Hugging Face ``config.json``; refuse what we do not implement."""
        mt = d.get("model_type", "llama")
        if mt != "llama" or d.get("attention_bias") or d.get("mlp_bias"):
            raise ValueError(f"config.json: only Llama models without biases are supported "
                             f"(model_type {mt!r}, attention_bias {d.get('attention_bias')}, "
                             f"mlp_bias {d.get('mlp_bias')})")
        act = d.get("hidden_act", "silu")
        if act != "silu":
            raise ValueError(f"config.json: hidden_act {act!r} is not supported (SwiGLU needs 'silu')")
        heads = _need(d, "num_attention_heads")
        hidden = _need(d, "hidden_size")
        if d.get("head_dim") not in (None, hidden // heads):
            raise ValueError(f"config.json: head_dim {d['head_dim']} differs from hidden_size / "
                             f"num_attention_heads = {hidden // heads}; not supported")
        return cls(vocab_size=_need(d, "vocab_size"), hidden_size=hidden,
                   num_hidden_layers=_need(d, "num_hidden_layers"), num_attention_heads=heads,
                   num_key_value_heads=d.get("num_key_value_heads") or heads,
                   intermediate_size=_need(d, "intermediate_size"),
                   rms_norm_eps=float(d.get("rms_norm_eps", 1e-6)),
                   rope_theta=float(d.get("rope_theta", 10000.0)),
                   rope_scaling=d.get("rope_scaling"),
                   max_position_embeddings=int(d.get("max_position_embeddings", 4096)),
                   tie_word_embeddings=bool(d.get("tie_word_embeddings", False)), name=name)


def _need(d: dict, key: str) -> Any:
    if key not in d:
        raise ValueError(f"config.json: missing required key {key!r}")
    return d[key]


#: Size presets, smallest first. ``tiny`` is for tests; ``small`` for CPU experiments.
PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(vocab_size=512, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, intermediate_size=172, name="tiny"),
    "small": ModelConfig(vocab_size=8192, hidden_size=256, num_hidden_layers=4, num_attention_heads=8,
                         num_key_value_heads=4, intermediate_size=688, name="small"),
    "base": ModelConfig(vocab_size=32000, hidden_size=512, num_hidden_layers=8, num_attention_heads=8,
                        num_key_value_heads=4, intermediate_size=1376, name="base"),
    "llama-250m": ModelConfig(vocab_size=32000, hidden_size=1024, num_hidden_layers=16,
                              num_attention_heads=16, num_key_value_heads=4, intermediate_size=2816,
                              name="llama-250m"),
}


def preset(name: str, **overrides: Any) -> ModelConfig:
    """A preset by name (optionally with fields replaced); an unknown name lists the known ones."""
    try:
        cfg = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}, "
                         f"or give a checkpoint folder") from None
    return replace(cfg, **overrides) if overrides else cfg
