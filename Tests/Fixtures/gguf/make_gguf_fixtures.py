"""Makes the GGUF test fixtures with llama.cpp's `gguf` package (run by hand, not in CI).

    python3 -m venv /tmp/ggufvenv && /tmp/ggufvenv/bin/pip install gguf==0.19.0 numpy
    /tmp/ggufvenv/bin/python Tests/Fixtures/gguf/make_gguf_fixtures.py

quants.gguf        metadata of every value type (arrays too), and for each tensor type Grove
                   reads, a [2, 512] tensor `<type>` of random bytes (valid f16 scales) with
                   `<type>.expected` = gguf's `dequantize` of it as F32; plus `q8_0.source` (F32)
                   and `q8_0.quantized` = gguf's `quantize(source, Q8_0)`.
llama.gguf         ../llama_untied_gqa4_bf16 (untied, GQA 4:1, head_dim 24, q/k/v/o biases) as
                   llama.cpp's converter writes it: BF16 tensors, q/k rows permuted, no tokenizer.
tokenizer_qwen2.gguf  ../shared/tokenizer as llama.cpp's converter writes it (pre "qwen2").
"""
import json, os
import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(0)


def quant_fixture():
    w = gguf.GGUFWriter(os.path.join(HERE, "quants.gguf"), "llama")
    for key, value, vtype in [("t.u8", 200, V.UINT8), ("t.i8", -100, V.INT8), ("t.u16", 60000, V.UINT16), ("t.i16", -30000, V.INT16),
                              ("t.u32", 4_000_000_000, V.UINT32), ("t.i32", -2_000_000_000, V.INT32), ("t.f32", 0.25, V.FLOAT32),
                              ("t.bool", True, V.BOOL), ("t.str", "héllo", V.STRING), ("t.u64", 2**63 + 5, V.UINT64),
                              ("t.i64", -2**62, V.INT64), ("t.f64", 1e-300, V.FLOAT64)]:
        w.add_key_value(key, value, vtype)
    w.add_array("t.strings", ["a", "", "ĠHello"])
    w.add_array("t.ints", [1, -2, 3])
    w.add_array("t.nested", [[1, 2], [3]])
    rows, cols = 2, 512
    for qtype in [Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q4_K, Q.Q6_K]:
        name = qtype.name.lower()
        if qtype in (Q.F32, Q.F16, Q.BF16):
            raw = gguf.quants.quantize(rng.normal(0, 2, (rows, cols)).astype(np.float32), qtype)
        else:
            block, size = gguf.GGML_QUANT_SIZES[qtype]
            raw = rng.integers(0, 256, (rows * cols // block, size), dtype=np.uint8)
            scale = lambda n: rng.uniform(-0.1, 0.1, (raw.shape[0], n)).astype(np.float16).view(np.uint8)
            if qtype == Q.Q4_K:
                raw[:, 0:4] = scale(2)   # d, dmin
            elif qtype == Q.Q6_K:
                raw[:, 208:210] = scale(1)  # d
            elif qtype == Q.Q4_1:
                raw[:, 0:4] = scale(2)   # d, m
            else:
                raw[:, 0:2] = scale(1)   # d
            raw = raw.reshape(rows, -1)
        w.add_tensor(name, raw, raw_dtype=qtype)
        w.add_tensor(name + ".expected", gguf.quants.dequantize(raw, qtype).astype(np.float32))
    source = rng.normal(0, 1, (3, 64)).astype(np.float32)
    source[1, :32] = 0  # an all-zero block
    w.add_tensor("q8_0.source", source)
    w.add_tensor("q8_0.quantized", gguf.quants.quantize(source, Q.Q8_0), raw_dtype=Q.Q8_0)
    finish(w)


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def read_safetensors(path):
    """name → (bf16 bits as uint16 array, shape); the fixture stores every tensor as BF16."""
    data = open(path, "rb").read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "BF16"
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + end], dtype=np.uint16).reshape(e["shape"])
    return out


def permute(w, n_head):
    """llama.cpp's convert_hf_to_gguf `LlamaModel.permute`: HF rotate-half rows to interleaved."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_fixture():
    src = os.path.join(HERE, "..", "llama_untied_gqa4_bf16")
    c = json.load(open(os.path.join(src, "config.json")))
    w = gguf.GGUFWriter(os.path.join(HERE, "llama.gguf"), "llama")
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_block_count(c["num_hidden_layers"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(c["num_attention_heads"])
    w.add_head_count_kv(c["num_key_value_heads"])
    w.add_key_length(c["head_dim"])
    w.add_value_length(c["head_dim"])
    w.add_rope_dimension_count(c["head_dim"])
    w.add_rope_freq_base(c["rope_parameters"]["rope_theta"])
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    w.add_vocab_size(c["vocab_size"])
    w.add_bos_token_id(c["bos_token_id"])
    w.add_eos_token_id(c["eos_token_id"])
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
             "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for name, bits in sorted(read_safetensors(os.path.join(src, "model.safetensors")).items()):
        if name.startswith("model.layers."):
            _, _, i, *rest = name.split(".")
            kind = names[".".join(rest[:-1])]
            gname = f"blk.{i}.{kind}.{rest[-1]}"
            if kind == "attn_q":
                bits = permute(bits, c["num_attention_heads"])
            elif kind == "attn_k":
                bits = permute(bits, c["num_key_value_heads"])
        else:
            gname = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
                     "lm_head.weight": "output.weight"}[name]
        w.add_tensor(gname, np.ascontiguousarray(bits), raw_dtype=Q.BF16)
    finish(w)


def tokenizer_fixture():
    src = os.path.join(HERE, "..", "shared", "tokenizer")
    t = json.load(open(os.path.join(src, "tokenizer.json")))
    config = json.load(open(os.path.join(src, "tokenizer_config.json")))
    added = {a["id"]: a for a in t["added_tokens"]}
    vocab = dict(t["model"]["vocab"], **{a["content"]: i for i, a in added.items()})
    tokens = [None] * len(vocab)
    for tok, i in vocab.items():
        tokens[i] = tok
    types = [3 if i in added and added[i]["special"] else 1 for i in range(len(tokens))]
    w = gguf.GGUFWriter(os.path.join(HERE, "tokenizer_qwen2.gguf"), "qwen2")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([" ".join(m) for m in t["model"]["merges"]])
    w.add_eos_token_id(vocab[config["eos_token"]])
    w.add_pad_token_id(vocab[config["pad_token"]])
    w.add_add_bos_token(False)
    w.add_chat_template(config["chat_template"])
    finish(w)


quant_fixture()
llama_fixture()
tokenizer_fixture()
for f in sorted(os.listdir(HERE)):
    print(f, os.path.getsize(os.path.join(HERE, f)))
