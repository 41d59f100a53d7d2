"""Grouped-query attention over the paged KV cache, for a flattened mixed batch.

Each token's key and value are written into its request's cache slots first; then every query
attends only to its own request's cached context (itself included). Query heads that share a key
/ value head are folded into the query-length axis, so the cache is read once per key/value head
and never copied per query head. Gathered blocks go into a reused :class:`Workspace`: fresh
buffers of tens of megabytes cost more in page faults than the copy itself. :meth:`Attention.dense`
is the plain causal attention over one whole sequence, the independent reference the tests
compare the paged path against.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .batch import FlatBatch
from .config import ModelConfig
from .layers import Rotary


class Workspace:
    """Scratch buffers that grow and are reused across layers and iterations (one per model)."""

    def __init__(self) -> None:
        self._bufs: dict[str, torch.Tensor] = {}

    def take(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        n = 1
        for x in shape:
            n *= x
        buf = self._bufs.get(name)
        if buf is None or buf.numel() < n or buf.dtype != like.dtype or buf.device != like.device:
            buf = torch.empty(max(n, 2 * (buf.numel() if buf is not None else 0)), dtype=like.dtype,
                              device=like.device)
            self._bufs[name] = buf
        return buf[:n].view(shape)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        h, d = cfg.hidden_size, cfg.head_dim
        self.layer, self.kvh, self.g, self.d = layer, cfg.num_key_value_heads, cfg.group_size, d
        self.q_proj = nn.Linear(h, cfg.num_attention_heads * d, bias=False)
        self.k_proj = nn.Linear(h, self.kvh * d, bias=False)
        self.v_proj = nn.Linear(h, self.kvh * d, bias=False)
        self.o_proj = nn.Linear(cfg.num_attention_heads * d, h, bias=False)

    def _qkv(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        T = x.shape[0]
        q = self.q_proj(x).view(T, self.kvh, self.g, self.d)
        k = self.k_proj(x).view(T, self.kvh, self.d)
        v = self.v_proj(x).view(T, self.kvh, self.d)
        return Rotary.apply(q, cos, sin), Rotary.apply(k, cos, sin), v

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, batch: FlatBatch,
                k_cache: torch.Tensor, v_cache: torch.Tensor, block_size: int,
                ws: Workspace) -> torch.Tensor:
        """``x`` [T, hidden]; ``k_cache``/``v_cache`` [kv_heads, slots, head_dim] of this layer."""
        T = x.shape[0]
        q, k, v = self._qkv(x, cos, sin)
        k_cache.index_copy_(1, batch.write_slots, k.transpose(0, 1))
        v_cache.index_copy_(1, batch.write_slots, v.transpose(0, 1))
        out = torch.empty_like(q)
        for grp in batch.decode_groups:
            # [n, kvh, L, d]; the g query heads of a kv head sit on the query-length axis
            a, b = grp.start, grp.start + grp.count
            kd = _gather(k_cache, grp.blocks, block_size, ws, "k").transpose(0, 1)
            vd = _gather(v_cache, grp.blocks, block_size, ws, "v").transpose(0, 1)
            out[a:b] = F.scaled_dot_product_attention(q[a:b], kd, vd, attn_mask=grp.mask)
        for c in batch.chunks:
            n = c.length
            qc = q[c.start:c.start + n].permute(1, 2, 0, 3).reshape(self.kvh, self.g * n, self.d)
            kc = _gather(k_cache, c.blocks, block_size, ws, "k")
            vc = _gather(v_cache, c.blocks, block_size, ws, "v")
            oc = F.scaled_dot_product_attention(qc, kc, vc, attn_mask=c.mask)
            out[c.start:c.start + n] = oc.view(self.kvh, self.g, n, self.d).permute(2, 0, 1, 3)
        return self.o_proj(out.view(T, -1))

    def dense(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Causal attention of one whole sequence ``x`` [n, hidden], no cache (the reference)."""
        n = x.shape[0]
        q, k, v = self._qkv(x, cos, sin)
        q = q.reshape(n, self.kvh * self.g, self.d).transpose(0, 1)           # [heads, n, d]
        k = k.repeat_interleave(self.g, dim=1).transpose(0, 1)
        v = v.repeat_interleave(self.g, dim=1).transpose(0, 1)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(o.transpose(0, 1).reshape(n, -1))


def _gather(cache: torch.Tensor, blocks: torch.Tensor, block_size: int, ws: Workspace,
            name: str) -> torch.Tensor:
    """The listed blocks of one layer's cache ``[kvh, slots, d]``, as ``[kvh, *blocks.shape[:-1],
    blocks.shape[-1] * block_size, d]`` (a view of workspace buffer ``name``): whole tiles are
    copied, one index per block."""
    kvh, slots, d = cache.shape
    idx = blocks.reshape(-1)
    out = ws.take(name, (kvh, idx.numel(), block_size, d), cache)
    torch.index_select(cache.view(kvh, slots // block_size, block_size, d), 1, idx, out=out)
    return out.view(kvh, *blocks.shape[:-1], blocks.shape[-1] * block_size, d)
