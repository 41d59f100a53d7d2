"""Cross-checks against Hugging Face transformers and the checkpoint format (skipped when
transformers or safetensors is not installed: they are not required by the tests)."""

import pytest

torch = pytest.importorskip("torch")

from llmqueue.real.config import preset  # noqa: E402
from llmqueue.real.model import build_model  # noqa: E402


def hf_model(cfg, state):
    transformers = pytest.importorskip("transformers", reason="transformers not installed")
    d = {k: v for k, v in cfg.to_hf().items() if k not in ("architectures", "model_type", "torch_dtype")}
    m = transformers.LlamaForCausalLM(transformers.LlamaConfig(**d)).eval()
    m.load_state_dict(state, strict=True)
    return m


@pytest.mark.parametrize("scaling", [None, {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                            "high_freq_factor": 4.0, "original_max_position_embeddings": 64}])
def test_logits_match_transformers(scaling):
    cfg = preset("tiny", rope_scaling=scaling)
    ours = build_model(cfg, seed=5)
    ref = hf_model(cfg, ours.state_dict())
    ids = torch.randint(0, cfg.vocab_size, (1, 150), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = ref(ids).logits[0]
        b = ours.dense_logits(ids[0])
    assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()


def test_checkpoint_round_trip_and_transformers_reads_it(tmp_path):
    pytest.importorskip("safetensors", reason="safetensors not installed")
    from llmqueue.real.checkpoint import load_model, save_checkpoint
    ours = build_model(preset("tiny"), seed=7)
    save_checkpoint(ours, tmp_path / "ckpt")
    back = load_model(str(tmp_path / "ckpt"))
    ids = torch.arange(30) % 500
    assert torch.equal(back.dense_logits(ids), ours.dense_logits(ids))
    transformers = pytest.importorskip("transformers", reason="transformers not installed")
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "ckpt").eval()
    with torch.no_grad():
        assert torch.allclose(hf(ids[None]).logits[0], ours.dense_logits(ids), atol=1e-4)


def test_bad_checkpoint_folders_are_clear_errors(tmp_path):
    pytest.importorskip("safetensors", reason="safetensors not installed")
    from llmqueue.real.checkpoint import load_model, save_checkpoint
    with pytest.raises(ValueError, match="neither a preset"):
        load_model(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        load_model(str(tmp_path / "empty"))
    save_checkpoint(build_model(preset("tiny"), seed=1), tmp_path / "c")
    cfg = (tmp_path / "c" / "config.json").read_text().replace('"num_hidden_layers": 2', '"num_hidden_layers": 3')
    (tmp_path / "c" / "config.json").write_text(cfg)
    with pytest.raises(ValueError, match="do not match config.json"):
        load_model(str(tmp_path / "c"))
