#!/usr/bin/env python3
"""Grove against the PyTorch / TRL reference, back to back in one run, with the ratios.

    make bench-compare            # or: python3 Tests/Benchmarks/bench_compare.py

1. finds a Python with the reference's pinned torch/transformers/trl: REFERENCE_PYTHON, or
   a copy of ../shared/reference (read-only) in .build/bench/reference whose setup.sh is run
   once there (several GB: PyPI's torch);
2. runs `grove bench --isolate` (release build; the GRPO step on the small model, as the
   reference's table), then bench_torch.py --isolate and bench_trl_grpo.py (small, beta 0.04),
   one after the other, nothing in parallel;
3. writes every JSON line to .build/bench/results.jsonl and prints the table of ratios.

Ratios taken in one run are the only figures that count on a shared machine.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("GROVE_SHARED", ROOT.parent / "shared"))
WORK = ROOT / ".build" / "bench"


def reference_python() -> Path:
    if os.environ.get("REFERENCE_PYTHON"):
        return Path(os.environ["REFERENCE_PYTHON"])
    ref = WORK / "reference"
    if not ref.exists():
        shutil.copytree(SHARED / "reference", ref, ignore=shutil.ignore_patterns(".venv", "results"))
        for p in ref.rglob("*"):
            p.chmod(p.stat().st_mode | 0o200)
        ref.chmod(ref.stat().st_mode | 0o200)
    if not (ref / ".venv" / "bin" / "python").exists():
        subprocess.run(["bash", "setup.sh", "--no-apt"], cwd=ref, check=True)
    return ref / ".venv" / "bin" / "python"


def run(cmd, **kw) -> list:
    print("$ " + " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    out = subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.PIPE, text=True, **kw).stdout
    records = [json.loads(l) for l in out.splitlines() if l.startswith('{"')]
    for r in records:
        print(json.dumps(r), file=sys.stderr)
    return records


def find(records, bench, model=None):
    for r in records:
        if r.get("bench") == bench and (model is None or r.get("model") == model):
            return r
    raise SystemExit(f"no {bench} {model or ''} line in the results")


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    python = reference_python()
    subprocess.run(["swift", "build", "-c", "release", "--product", "grove"], cwd=ROOT, check=True)
    grove_bin = ROOT / ".build" / "release" / "grove"
    grove = run([grove_bin, "bench", "--isolate", "--parts", "train,forward,generate"], cwd=ROOT)
    grove += run([grove_bin, "bench", "--isolate", "--models", "small", "--parts", "grpo"], cwd=ROOT)
    ref_dir = SHARED / "reference"  # the scripts only read from their folder (and ../fixtures)
    torch = run([python, ref_dir / "bench_torch.py", "--isolate", "--skip-matmul"], cwd=WORK)
    trl = run([python, ref_dir / "bench_trl_grpo.py", "--model", "small", "--beta", "0.04"], cwd=WORK)
    with open(WORK / "results.jsonl", "w") as f:
        for r in grove + torch + trl:
            f.write(json.dumps(r) + "\n")

    env = find(grove, "grove_env")
    rows = []
    for m in ("small", "big"):
        g, t = find(grove, "grove_train_step", m), find(torch, "torch_train_step", m)
        rows.append((f"training step, {m} (tokens/s)", g["tokens_per_s"], t["tokens_per_s"], g["tokens_per_s"] / t["tokens_per_s"]))
    for m in ("small", "big"):
        g, t = find(grove, "grove_forward", m), find(torch, "torch_forward", m)
        rows.append((f"forward, {m} (tokens/s)", g["tokens_per_s"], t["tokens_per_s"], g["tokens_per_s"] / t["tokens_per_s"]))
    for m in ("small", "big"):
        g, t = find(grove, "grove_generate", m), find(torch, "torch_generate", m)
        rows.append((f"generation, {m} (new tokens/s)", g["new_tokens_per_s"], t["new_tokens_per_s"],
                     g["new_tokens_per_s"] / t["new_tokens_per_s"]))
    g, t = find(grove, "grove_grpo_step", "small"), find(trl, "trl_grpo_summary")
    rows.append(("GRPO step, small (s/step; ratio = TRL/Grove)", g["median_step_s"], t["median_step_s"],
                 t["median_step_s"] / g["median_step_s"]))
    for m in ("small", "big"):
        for part, tpart in (("grove_train_step", "torch_train_step"), ("grove_generate", "torch_generate")):
            g, t = find(grove, part, m), find(torch, tpart, m)
            rows.append((f"peak memory, {m} {part.split('_', 1)[1]} (MiB; ratio = torch/Grove)", g["peak_rss_mb"],
                         t["peak_rss_mb"], t["peak_rss_mb"] / g["peak_rss_mb"]))
    peak = env["sgemm_2048_gflops"]
    for m in ("small", "big"):
        g, t = find(grove, "grove_train_step", m), find(torch, "torch_train_step", m)
        rows.append((f"training GFLOP/s, {m} (% of {peak:.0f} sgemm)", g["approx_model_gflops"], t["approx_model_gflops"],
                     g["approx_model_gflops"] / peak))

    print(f"\nGrove {env['grove']} (BLAS {env['blas_core']}, {env['blas_threads']} threads) vs "
          f"torch {torch[0].get('torch', '?')} / TRL {find(trl, 'trl_grpo_summary').get('trl', '?')}, one run\n")
    print(f"| measurement | Grove | reference | ratio |\n|---|---:|---:|---:|")
    for name, gv, tv, ratio in rows:
        shown = f"{ratio:.0%}" if "GFLOP" in name else f"{ratio:.2f}x"
        digits = 3 if max(gv, tv) < 10 else 1
        print(f"| {name} | {gv:,.{digits}f} | {tv:,.{digits}f} | {shown} |")
    print(f"\nraw lines: {WORK / 'results.jsonl'}")


if __name__ == "__main__":
    main()
