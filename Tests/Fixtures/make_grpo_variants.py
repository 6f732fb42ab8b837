"""Runs TRL 1.16's own GRPOTrainer._compute_loss on the inputs of
../shared/fixtures/public/grpo_loss.json for every loss variant Grove implements, and writes
grpo_loss_variants.json (loss, d loss / d per_token_logps, metrics). Run by hand:

    /tmp/refvenv/bin/pip install trl==1.16.0
    /tmp/refvenv/bin/python Tests/Fixtures/make_grpo_variants.py
"""
import json, os, types
import torch
from trl.trainer.grpo_trainer import GRPOTrainer

HERE = os.path.dirname(os.path.abspath(__file__))
src = json.load(open(os.path.join(HERE, "../../../shared/fixtures/public/grpo_loss.json")))
inp = src["inputs"]
f64 = lambda k: torch.tensor(inp[k], dtype=torch.float64)

class Accel:
    num_processes = 1
    def gather(self, x): return x
    def gather_for_metrics(self, x): return x
    def reduce(self, x, reduction="sum"): return x

def run(loss_type, beta, eps_low, eps_high):
    logps = f64("per_token_logps").requires_grad_(True)
    self = types.SimpleNamespace(
        top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level="token", beta=beta,
        loss_type=loss_type, epsilon_low=eps_low, epsilon_high=eps_high, use_vllm=False, current_gradient_accumulation_steps=1,
        max_completion_length=inp["max_completion_length"], aux_loss_enabled=False, _entropy_bonus_enabled=False,
        accelerator=Accel(), model=types.SimpleNamespace(training=True), _metrics={"train": {}},
        args=types.SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1))
    self._metrics = {"train": __import__("collections").defaultdict(list)}
    self._get_per_token_logps_and_entropies = lambda *a, **k: (logps, torch.zeros_like(logps), None)
    mask = torch.tensor(inp["completion_mask"], dtype=torch.float64)
    B, T = mask.shape
    inputs = {"prompt_ids": torch.zeros(B, 1, dtype=torch.long), "prompt_mask": torch.ones(B, 1),
              "completion_ids": torch.zeros(B, T, dtype=torch.long), "completion_mask": mask,
              "advantages": f64("advantages"), "old_per_token_logps": f64("old_per_token_logps"),
              "ref_per_token_logps": f64("ref_per_token_logps"), "num_items_in_batch": mask.sum()}
    loss = GRPOTrainer._compute_loss(self, None, inputs)
    loss.backward()
    metrics = {k: v[-1] for k, v in self._metrics["train"].items() if k != "entropy"}
    return {"config": {"loss_type": loss_type, "beta": beta, "epsilon": eps_low, "epsilon_high": eps_high},
            "loss": loss.item(), "grad_per_token_logps": logps.grad.tolist(), "metrics": metrics}

cases = [run("grpo", 0.04, 0.2, 0.2), run("bnpo", 0.04, 0.2, 0.2), run("dr_grpo", 0.04, 0.2, 0.2),
         run("dapo", 0.0, 0.2, 0.28), run("grpo", 0.0, 0.2, 0.28), run("bnpo", 0.1, 0.1, 0.3)]
assert abs(cases[0]["loss"] - src["cases"][0]["loss"]) < 1e-12, "harness disagrees with the shared fixture"
json.dump({"source": "TRL 1.16 GRPOTrainer._compute_loss on grpo_loss.json's inputs (made by make_grpo_variants.py)",
           "cases": cases}, open(os.path.join(HERE, "grpo_loss_variants.json"), "w"), indent=1)
for c in cases: print(c["config"], c["loss"])
