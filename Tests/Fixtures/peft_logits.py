"""Logits of a base model with a LoRA adapter, as PEFT computes them: the check that an adapter
Grove wrote loads in PEFT and means the same thing (Tests/GroveModelTests/PEFTInteropTests.swift).

    python3 peft_logits.py BASE_DIR ADAPTER_DIR IDS_JSON OUT.npy

writes float32 logits [T, vocab] of the ids. Exits 3 when torch, transformers or peft is missing.
"""
import json
import sys

try:
    import numpy as np
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
except ImportError as error:
    print(f"peft_logits.py: {error}", file=sys.stderr)
    sys.exit(3)

base_dir, adapter_dir, ids_json, out = sys.argv[1:5]
base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager")
model = PeftModel.from_pretrained(base, adapter_dir).eval()
ids = torch.tensor([json.loads(ids_json)])
with torch.no_grad():
    logits = model(input_ids=ids).logits[0]
np.save(out, logits.numpy().astype(np.float32))
