#!/bin/sh
# Peak RSS of a whole `grove run` of full-fine-tuning GRPO on SmolLM2-135M's shape (seeded
# weights, the fixture tokenizer): 2 steps of 8 prompts × 8 completions ≤ 16 tokens, β 0.04,
# gradient checkpointing, with float32 or bfloat16 AdamW moments, with and without a checkpoint
# every step. Unlike `grove bench`, this counts loading the model and writing checkpoints.
#   PYTHON=/path/to/python-with-transformers sh Tests/Benchmarks/smollm2_run_memory.sh
set -e
GROVE=${GROVE:-.build/release/grove}
DIR=${DIR:-/tmp/grove-smollm2-memory}
mkdir -p "$DIR"
[ -f "$DIR/model/model.safetensors" ] || "${PYTHON:-python3}" - "$DIR/model" <<'PY'
import shutil, sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                     num_key_value_heads=3, head_dim=64, rms_norm_eps=1e-5, rope_theta=100000.0, max_position_embeddings=8192,
                     tie_word_embeddings=True, bos_token_id=1022, eos_token_id=1023, pad_token_id=1021)
LlamaForCausalLM(config).float().save_pretrained(sys.argv[1])
for f in ["tokenizer.json", "tokenizer_config.json"]:
    shutil.copy("../shared/fixtures/public/tokenizer/" + f, sys.argv[1])
PY
for state in float32 bfloat16; do
    for every in 0 1; do
        out="$DIR/run-$state-$every"
        rm -rf "$out"
        cat > "$out.yaml" <<YAML
name: smollm2-memory
output_dir: $out
model: {path: $DIR/model}
data: {train: Datasets/arithmetic/prompts.jsonl, format: prompt_completion, task: arithmetic}
stages:
  - grpo: {steps: 2, prompts_per_step: 8, group_size: 8, max_new_tokens: 16, beta: 0.04, gradient_checkpointing: true,
           checkpoint_every: $every, optimizer_state: $state, rewards: [task]}
eval: {samples: 0}
YAML
        kb=$(/usr/bin/time -f %M "$GROVE" run "$out.yaml" 2>&1 >/dev/null | tail -1)
        echo "optimizer_state $state, checkpoint_every $every: peak $((kb / 1024)) MiB"
    done
done
