"""Makes Grove's own model fixtures with Hugging Face transformers (run by hand, not in CI).

    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install torch==2.15.0 transformers==5.23.0 safetensors numpy
    /tmp/refvenv/bin/python Tests/Fixtures/make_fixtures.py

Each folder holds a checkpoint as save_pretrained writes it (some in bfloat16 / float16),
`input_ids.json` and `logits.npy` (float32 [T, vocab], eager attention, computed from the
weights as stored, i.e. after rounding to the stored dtype).
"""
import json, os
import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)
torch.set_num_threads(1)

CASES = {
    # Llama, untied, GQA 4:1, head_dim (24) != hidden/heads (16), attention_bias, legacy top-level rope_theta, bf16 on disk.
    "llama_untied_gqa4_bf16": (LlamaForCausalLM, LlamaConfig(
        vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, head_dim=24, rms_norm_eps=1e-5, rope_theta=500000.0, max_position_embeddings=128,
        tie_word_embeddings=False, attention_bias=True, bos_token_id=1, eos_token_id=2), torch.bfloat16),
    # Qwen2, untied, no GQA (4:4), float16 on disk.
    "qwen2_untied_mha_f16": (Qwen2ForCausalLM, Qwen2Config(
        vocab_size=200, hidden_size=48, intermediate_size=80, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=4, rms_norm_eps=1e-6, rope_theta=10000.0, max_position_embeddings=128,
        tie_word_embeddings=False, eos_token_id=3), torch.float16),
}

for name, (cls, config, dtype) in CASES.items():
    config._attn_implementation = "eager"
    model = cls(config).eval()
    with torch.no_grad():
        for p in model.parameters():  # wider than HF's default init, so logits are far from uniform
            p.normal_(0.0, 0.15)
    model = model.to(dtype).to(torch.float32)  # round to the stored dtype, compute in float32
    out = os.path.join(HERE, name)
    model.to(dtype).save_pretrained(out)
    model.to(torch.float32)
    ids = torch.randint(0, config.vocab_size, (1, 21), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(ids).logits[0].float().numpy()
    np.save(os.path.join(out, "logits.npy"), logits.astype(np.float32))
    json.dump({"input_ids": ids[0].tolist()}, open(os.path.join(out, "input_ids.json"), "w"))
    print(name, logits.shape, float(np.abs(logits).max()))

# A reward model: Qwen2ForSequenceClassification with one label (score.weight [1, hidden]).
from transformers import Qwen2ForSequenceClassification
config = Qwen2Config(vocab_size=200, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=False, num_labels=1, pad_token_id=0)
config._attn_implementation = "eager"
rm = Qwen2ForSequenceClassification(config).eval()
with torch.no_grad():
    for p in rm.parameters():
        p.normal_(0.0, 0.15)
out = os.path.join(HERE, "qwen2_reward_model")
rm.save_pretrained(out)
sequences = [[5, 17, 33, 90, 2], [7, 8, 9, 10, 11, 12, 13, 14]]
with torch.no_grad():
    scores = [rm(torch.tensor([s])).logits[0, 0].item() for s in sequences]
json.dump({"sequences": sequences, "scores": scores}, open(os.path.join(out, "expected.json"), "w"))
print("reward model", scores)
