"""The building blocks of a Llama decoder layer: RMSNorm, rotary embeddings, the SwiGLU MLP.

Conventions follow the Llama checkpoints on the Hugging Face hub, so their weights load as they
are: rotary embeddings rotate the two halves of each head (not interleaved pairs), and RMSNorm
normalises in float32 before scaling by its weight.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import ModelConfig


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight, computed in float32."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


def inverse_frequencies(cfg: ModelConfig) -> torch.Tensor:
    """Rotary inverse frequencies theta^(-2i/d), with Llama 3's long-context rescaling if configured.

    Llama 3 scaling divides low frequencies (wavelength above original_context / low_freq_factor)
    by ``factor``, keeps high ones (wavelength below original_context / high_freq_factor), and
    interpolates linearly in 1/wavelength between the two.
    """
    d = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2).float() / d))
    rs = cfg.rope_scaling
    if rs is None or rs.get("rope_type", rs.get("type")) == "default":
        return inv.float()
    factor = float(rs["factor"])
    lo, hi = float(rs.get("low_freq_factor", 1.0)), float(rs.get("high_freq_factor", 4.0))
    original = float(rs.get("original_max_position_embeddings", 8192))
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > original / lo, inv / factor, inv)
    smooth = (original / wavelen - lo) / (hi - lo)
    middle = (wavelen <= original / lo) & (wavelen >= original / hi)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    return torch.where(middle, blended, scaled).float()


class Rotary(nn.Module):
    """cos/sin tables by position, extended on demand; :meth:`apply` rotates queries and keys."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.register_buffer("inv_freq", inverse_frequencies(cfg), persistent=False)
        self._cos: torch.Tensor | None = None
        self._sin: torch.Tensor | None = None
        self._length = 0

    def _table(self, n: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cos is None or n > self._length or self._cos.device != device or self._cos.dtype != dtype:
            length = max(n, 2 * self._length, 256)
            pos = torch.arange(length, device=device, dtype=torch.float32)
            freqs = torch.outer(pos, self.get_buffer("inv_freq").to(device))
            emb = torch.cat([freqs, freqs], dim=-1)
            self._cos, self._sin = emb.cos().to(dtype), emb.sin().to(dtype)
            self._length = length
        assert self._cos is not None and self._sin is not None
        return self._cos, self._sin

    def tables(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin of shape ``[tokens, head_dim]`` for the given absolute positions."""
        n = int(positions.max()) + 1 if positions.numel() else 1
        cos, sin = self._table(n, positions.device, dtype)
        return cos[positions], sin[positions]

    @staticmethod
    def apply(  # type: ignore[override]  # rotary's apply, not nn.Module.apply
            x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Rotate ``x`` of shape ``[tokens, heads..., head_dim]`` by per-token cos/sin."""
        shape = (cos.shape[0],) + (1,) * (x.dim() - 2) + (cos.shape[1],)
        cos, sin = cos.view(shape), sin.view(shape)
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
