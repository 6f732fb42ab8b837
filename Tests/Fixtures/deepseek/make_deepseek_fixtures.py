"""Makes Grove's own DeepSeek-V2/V3 fixtures with Hugging Face transformers (run by hand, not in CI).

    /tmp/lora-venv/bin/python Tests/Fixtures/deepseek/make_deepseek_fixtures.py

The shared `model_f_deepseek_v2` covers V2 with q_lora_rank, softmax greedy routing and default RoPE.
These cover the rest: V2-Lite (q_lora_rank null, tied embeddings, shared experts ×2, scaling factor),
YaRN RoPE with its softmax-scale correction and group-limited greedy routing, and V3 (sigmoid scores,
e_score_correction_bias that selects but does not weigh, n_group/topk_group, norm_topk_prob,
interleaved and non-interleaved RoPE). Each folder: `model/` as save_pretrained writes it (float32),
`expected.json` (input ids, loss, a greedy continuation with the KV cache, the smallest routing
margin), `logits.npy` (float32 [T, vocab], eager attention) and `grads.safetensors`
(d mean-NLL / d parameter for every parameter but the embeddings and head, transformers' names:
routed experts as `mlp.experts.gate_up_proj` [E, 2I, C] and `mlp.experts.down_proj` [E, C, I]).
"""
import json, os
import numpy as np
import torch
from safetensors.torch import save_file
from transformers import DeepseekV2Config, DeepseekV2ForCausalLM, DeepseekV3Config, DeepseekV3ForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
torch.set_num_threads(1)

COMMON = dict(vocab_size=128, hidden_size=32, intermediate_size=48, num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
              rms_norm_eps=1e-6, moe_intermediate_size=16, pad_token_id=0, eos_token_id=1, bos_token_id=None)
CASES = {
    # V2-Lite: no query compression, tied head, 2 shared experts, top-3 of 6, routed_scaling_factor 1.5.
    "v2_lite": (DeepseekV2ForCausalLM, DeepseekV2Config(
        **COMMON, num_hidden_layers=3, q_lora_rank=None, kv_lora_rank=12, qk_nope_head_dim=8, qk_rope_head_dim=4,
        v_head_dim=12, first_k_dense_replace=1, n_shared_experts=2, n_routed_experts=6, num_experts_per_tok=3,
        topk_method="greedy", routed_scaling_factor=1.5, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    # YaRN (factor 4 over 64 positions, mscale ≠ mscale_all_dim: both the cos/sin factor and the softmax scale change)
    # with group-limited greedy routing (4 groups of 2, the best 2 groups, top-3).
    "v2_yarn_grouped": (DeepseekV2ForCausalLM, DeepseekV2Config(
        **COMMON, num_hidden_layers=2, q_lora_rank=16, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=8,
        v_head_dim=10, first_k_dense_replace=0, n_shared_experts=1, n_routed_experts=8, num_experts_per_tok=3,
        topk_method="group_limited_greedy", n_group=4, topk_group=2, routed_scaling_factor=1.0, tie_word_embeddings=False,
        rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 64,
                         "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 0.8})),
    # V3: sigmoid scores plus e_score_correction_bias for the choice, 4 groups of 2 (group score = sum of its best 2),
    # best 2 groups, top-3, norm_topk_prob, routed_scaling_factor 2.5, interleaved RoPE.
    "v3": (DeepseekV3ForCausalLM, DeepseekV3Config(
        **COMMON, num_hidden_layers=2, q_lora_rank=16, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=8,
        v_head_dim=8, first_k_dense_replace=1, n_shared_experts=1, n_routed_experts=8, num_experts_per_tok=3,
        n_group=4, topk_group=2, norm_topk_prob=True, routed_scaling_factor=2.5, tie_word_embeddings=False,
        rope_interleave=True, rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    # V3 with rope_interleave false (rotate_half on the RoPE part) and YaRN, no group limit (1 group), no normalisation.
    "v3_halves_yarn": (DeepseekV3ForCausalLM, DeepseekV3Config(
        **COMMON, num_hidden_layers=2, q_lora_rank=None, kv_lora_rank=8, qk_nope_head_dim=8, qk_rope_head_dim=6,
        v_head_dim=8, first_k_dense_replace=0, n_shared_experts=1, n_routed_experts=4, num_experts_per_tok=2,
        n_group=1, topk_group=1, norm_topk_prob=False, routed_scaling_factor=1.0, tie_word_embeddings=False,
        rope_interleave=False, rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 2.0,
                                                "original_max_position_embeddings": 128, "mscale": 0.707, "mscale_all_dim": 0.707})),
}


def routing_margin(model, ids):
    """The smallest gap, over tokens and MoE layers, between the last chosen and the first unchosen expert's
    choice score: a margin far above float32 rounding means Grove must pick the same experts."""
    margins = []
    def hook(module, args, out):
        x = args[0].reshape(-1, module.weight.shape[1]).float()
        logits = x @ module.weight.float().T
        v3 = hasattr(module, "e_score_correction_bias")
        s = logits.sigmoid() + module.e_score_correction_bias if v3 else logits.softmax(-1)
        groups = module.num_group if (v3 or module.topk_method == "group_limited_greedy") else 1
        if groups and groups > 1:  # the group choice, then the choice inside the chosen groups
            g = s.view(len(s), groups, -1)
            g = g.topk(2, dim=-1)[0].sum(-1) if v3 else g.max(-1).values
            top = g.topk(module.topk_group + (1 if module.topk_group < groups else 0), dim=-1).values
            if module.topk_group < groups:
                margins.append(float((top[:, -2] - top[:, -1]).min()))
            keep = torch.zeros_like(g).scatter(1, g.topk(module.topk_group, dim=-1).indices, 1)
            s = s.masked_fill(keep.repeat_interleave(s.shape[1] // groups, dim=1) == 0, float("-inf"))
        idx = out[2]
        chosen = s.gather(1, idx).min(-1).values
        rest = s.scatter(1, idx, float("-inf")).max(-1).values
        margins.append(float((chosen - rest).min()))
    hs = [m.register_forward_hook(hook) for n, m in model.named_modules() if n.endswith("mlp.gate")]
    with torch.no_grad():
        model(ids)
    for h in hs:
        h.remove()
    return min(margins)


for name, (cls, config) in CASES.items():
    torch.manual_seed(0)
    config._attn_implementation = "eager"
    model = cls(config).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():  # wider than HF's default init, so logits are far from uniform
            if pname.endswith("layernorm.weight") or pname.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.15)
        for bname, b in model.named_buffers():
            if bname.endswith("e_score_correction_bias"):
                b.copy_(0.1 * torch.randn_like(b))
    out = os.path.join(HERE, name)
    model.save_pretrained(os.path.join(out, "model"))
    ids = torch.randint(2, config.vocab_size, (1, 21), generator=torch.Generator().manual_seed(1))
    logits = model(ids).logits[0]
    np.save(os.path.join(out, "logits.npy"), logits.detach().float().numpy().astype(np.float32))
    loss = torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:])
    loss.backward()
    grads = {n: p.grad.detach().contiguous() for n, p in model.named_parameters()
             if p.grad is not None and n not in ("model.embed_tokens.weight", "lm_head.weight")}
    save_file(grads, os.path.join(out, "grads.safetensors"))
    prompt = ids[:, :6]
    with torch.no_grad():
        generated = model.generate(prompt, max_new_tokens=10, do_sample=False, use_cache=True,
                                   pad_token_id=config.pad_token_id, eos_token_id=None)
    expected = {"input_ids": ids[0].tolist(), "loss_value": loss.item(), "prompt_ids": prompt[0].tolist(),
                "greedy_output_ids": generated[0, 6:].tolist(), "routing_margin": routing_margin(model, ids),
                "num_parameters": sum(p.numel() for p in model.parameters())}
    json.dump(expected, open(os.path.join(out, "expected.json"), "w"))
    print(name, tuple(logits.shape), "loss", round(loss.item(), 4), "routing margin", expected["routing_margin"])
