#!/usr/bin/env python3
"""The reference side of `grove bench --models smollm2`: ../shared/reference's own measurements,
run unchanged on SmolLM2-135M's architecture (LlamaForCausalLM with seeded weights) instead of
their Qwen2 shapes.

    train  bench_torch.py's training step: forward + backward + AdamW(lr 1e-4, wd 0.01) on batch x 256
           random tokens, median step after warm-up, tokens/s (its loop, without the forward-only
           part that follows it there: six more forwards of tens of seconds each)
    grpo   bench_trl_grpo.py's GRPO step: 8 prompts x 8 completions, <= 16 new tokens, beta, the
           fixture tokenizer's ids in SmolLM2's vocabulary of 49,152 (as Grove's bench does),
           --sft-steps of its plain-PyTorch SFT first; then a "trl_grpo_peak" line with the
           process's peak RSS

Each call is one process, so its peak RSS is its own (as bench_torch.py --isolate).

Usage: python reference_smollm2.py train [--batch 8] [--warmup 1] [--steps 3]
       python reference_smollm2.py grpo [--steps 2] [--sft-steps 0] [--beta 0.04]
"""
import argparse
import os
import sys
from pathlib import Path

SHARED = Path(os.environ.get("GROVE_SHARED", Path(__file__).resolve().parents[3] / "shared"))
sys.path.insert(0, str(SHARED / "reference"))

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

# SmolLM2-135M's config.json, as BenchShape.smollm2 in Sources/grove/Bench.swift.
SMOLLM2 = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
               num_key_value_heads=3, head_dim=64, rms_norm_eps=1e-5, rope_theta=100000.0,
               max_position_embeddings=8192, tie_word_embeddings=True, initializer_range=0.02)


def smollm2(vocab: int, **ids) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(**SMOLLM2, vocab_size=vocab, bos_token_id=None, attn_implementation="sdpa", **ids)
    return LlamaForCausalLM(cfg).to(torch.float32)


def train(batch: int, warmup: int, steps: int, seq: int, emit) -> None:
    """bench_torch.bench_train's training loop and record."""
    import statistics
    import time
    model = smollm2(49152, pad_token_id=0, eos_token_id=None).train()
    nparams = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    data = torch.randint(0, model.config.vocab_size, (warmup + steps, batch, seq), generator=g)
    times, losses = [], []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        out = model(input_ids=data[i], labels=data[i])
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        losses.append(out.loss.item())
        if i >= warmup:
            times.append(dt)
    med = statistics.median(times)
    tokens = batch * seq
    emit({"bench": "torch_train_step", "model": "smollm2", "params": nparams, "batch": batch, "seq": seq,
          "tokens_per_step": tokens, "warmup": warmup, "steps": steps,
          "median_step_s": round(med, 4), "min_step_s": round(min(times), 4), "step_s": [round(t, 3) for t in times],
          "tokens_per_s": round(tokens / med, 1), "approx_model_gflops": round(6 * nparams * tokens / med / 1e9, 1),
          "first_loss": round(losses[0], 4), "last_loss": round(losses[-1], 4),
          "optimizer": "AdamW(lr=1e-4, wd=0.01)", "attn": "sdpa", "dtype": "float32"})


def main() -> None:
    part = sys.argv[1] if len(sys.argv) > 1 else ""
    if part == "train":
        import bench_torch
        ap = argparse.ArgumentParser()
        ap.add_argument("--batch", type=int, default=8)
        ap.add_argument("--warmup", type=int, default=1)
        ap.add_argument("--steps", type=int, default=3)
        ap.add_argument("--threads", type=int, default=2)
        a = ap.parse_args(sys.argv[2:])
        torch.set_num_threads(a.threads)
        train(a.batch, a.warmup, a.steps, bench_torch.SEQ, bench_torch.emit)
    elif part == "grpo":
        import bench_trl_grpo
        bench_trl_grpo.SHAPES["smollm2"] = {}

        def make_model(tok, shape):
            model = smollm2(max(len(tok), 49152), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            model.generation_config.eos_token_id = tok.eos_token_id
            model.generation_config.pad_token_id = tok.pad_token_id
            return model

        bench_trl_grpo.make_model = make_model
        sys.argv = [sys.argv[0], "--model", "smollm2"] + sys.argv[2:]
        bench_trl_grpo.main()
        import resource
        bench_trl_grpo.emit({"bench": "trl_grpo_peak", "model": "smollm2",
                             "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
