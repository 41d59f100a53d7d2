"""Models from a preset and a seed, or from a local Llama checkpoint folder; and saving one.

A checkpoint folder holds ``config.json`` (Hugging Face's Llama config) and the weights as
``model.safetensors`` or sharded ``model-0000x-of-0000y.safetensors`` files, under Hugging Face's
parameter names. Nothing is ever downloaded. :func:`load_model` accepts either a preset name or
such a folder, so every command takes ``--model tiny`` and ``--model /path/to/llama`` alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .config import PRESETS, ModelConfig, preset
from .model import Llama, build_model

_SAFETENSORS_HINT = 'loading a checkpoint needs safetensors: pip install -e ".[real]"'


def _safetensors():
    try:
        import safetensors.torch as st
    except ModuleNotFoundError:
        raise ModuleNotFoundError(_SAFETENSORS_HINT, name="safetensors") from None
    return st


def load_checkpoint(folder: str | Path, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> Llama:
    """The model in ``folder`` (config.json + safetensors), every weight checked against the config."""
    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise ValueError(f"{folder}: not a checkpoint folder (no config.json)")
    try:
        cfg = ModelConfig.from_hf(json.loads(cfg_path.read_text()), name=folder.name)
    except json.JSONDecodeError as e:
        raise ValueError(f"{cfg_path}: not valid JSON ({e})") from None
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(f"{folder}: no *.safetensors weight files")
    st = _safetensors()
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(st.load_file(str(f)))
    model = Llama(cfg)
    expected = model.state_dict()
    if cfg.tie_word_embeddings:
        state.pop("lm_head.weight", None)
        expected.pop("lm_head.weight", None)
    state = {k: v for k, v in state.items() if not k.endswith("rotary_emb.inv_freq")}
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(f"{folder}: weights do not match config.json (missing {missing[:5]}, "
                         f"unexpected {extra[:5]})")
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise ValueError(f"{folder}: weight {k} has shape {tuple(v.shape)}, config.json says "
                             f"{tuple(expected[k].shape)}")
    model.load_state_dict(state, strict=False)
    return model.to(device=device, dtype=dtype).eval()


def save_checkpoint(model: Llama, folder: str | Path) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (float32) so that :func:`load_checkpoint`
    and Hugging Face's ``LlamaForCausalLM.from_pretrained`` both read it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model.cfg.to_hf(), indent=2) + "\n")
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    if model.cfg.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    _safetensors().save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def load_model(spec: str, *, seed: int = 0, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32) -> Llama:
    """A preset name (random weights from ``seed``) or a checkpoint folder."""
    if spec in PRESETS:
        return build_model(preset(spec), seed=seed, device=device, dtype=dtype)
    path = Path(spec).expanduser()
    if path.is_dir():
        return load_checkpoint(path, device=device, dtype=dtype)
    raise ValueError(f"--model {spec!r}: neither a preset ({', '.join(PRESETS)}) nor a checkpoint folder")
