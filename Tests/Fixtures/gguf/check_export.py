"""Checks a `grove export --gguf` file with llama.cpp's `gguf` package against its source folder
(float32 model.safetensors): every tensor's bytes equal gguf's own `quantize` of the source weight
(q/k rows permuted for llama, as llama.cpp's converter does), and the metadata is llama.cpp's.

    python3 Tests/Fixtures/gguf/check_export.py OUT.gguf MODEL_DIR

Exits 0 and prints "ok" on success. GGUFTests.testExportReadsBackWithTheGGUFPackage runs it when
`GROVE_PYTHON` (default python3) can import gguf.
"""
import json, os, sys
import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

path, folder = sys.argv[1], sys.argv[2]
config = json.load(open(os.path.join(folder, "config.json")))
data = open(os.path.join(folder, "model.safetensors"), "rb").read()
n = int.from_bytes(data[:8], "little")
header = json.loads(data[8:8 + n])
weights = {k: np.frombuffer(data[8 + n + e["data_offsets"][0]:8 + n + e["data_offsets"][1]], dtype=np.float32).reshape(e["shape"])
           for k, e in header.items() if k != "__metadata__" and e["dtype"] == "F32"}

reader = gguf.GGUFReader(path)
field = lambda key: reader.fields[key].contents()
arch = field("general.architecture")
assert arch == config["model_type"], arch
assert field(f"{arch}.block_count") == config["num_hidden_layers"]
assert field(f"{arch}.embedding_length") == config["hidden_size"]
assert field(f"{arch}.attention.head_count") == config["num_attention_heads"]
assert field(f"{arch}.attention.head_count_kv") == config["num_key_value_heads"]
assert len(field("tokenizer.ggml.tokens")) == config["vocab_size"]
assert field("tokenizer.ggml.model") == "gpt2"

names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
         "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
         "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def gguf_name(hf):
    if hf.startswith("model.layers."):
        _, _, i, *rest = hf.split(".")
        return f"blk.{i}.{names['.'.join(rest[:-1])]}.{rest[-1]}"
    return {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}[hf]


def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


tensors = {t.name: t for t in reader.tensors}
expected = {gguf_name(k): v for k, v in weights.items()}
assert set(tensors) == set(expected), set(tensors) ^ set(expected)
for name, w in expected.items():
    t = tensors[name]
    if arch == "llama" and ".attn_q." in name:
        w = permute(w, config["num_attention_heads"])
    if arch == "llama" and ".attn_k." in name:
        w = permute(w, config["num_key_value_heads"])
    stored = t.data.tobytes()
    mine = gguf.quants.quantize(np.ascontiguousarray(w), t.tensor_type).tobytes()
    assert stored == mine, f"{name} ({t.tensor_type.name}) differs from gguf.quants.quantize"
    assert list(reversed(t.shape.tolist())) == list(w.shape), name
print("ok", arch, len(tensors), "tensors")
