#!/usr/bin/env python3
"""Grove against the PyTorch / TRL reference, back to back in one run, with the ratios.

    make bench-compare            # or: python3 Tests/Benchmarks/bench_compare.py

1. finds a Python with the reference's pinned torch/transformers/trl: REFERENCE_PYTHON, or
   a copy of ../shared/reference (read-only) in .build/bench/reference whose setup.sh is run
   once there (several GB: PyPI's torch);
2. measures Grove and the reference in pairs, each pair seconds apart: per round, for each model
   `grove bench --isolate` then bench_torch.py --isolate on the same parts (train with forward,
   then generate), then the GRPO step (small model, beta 0.04) in Grove and in TRL; nothing runs
   in parallel. `--rounds N` (default 2) repeats the whole sequence. `--models smollm2` (or
   `small,big,smollm2`) measures SmolLM2-135M's shape instead of (or after) them: the training
   step against PyTorch, and the GRPO step (no SFT, beta 0.04) against TRL, the reference side
   through Tests/Benchmarks/reference_smollm2.py, fewer steps (each takes tens of seconds);
3. writes every JSON line to .build/bench/results.jsonl and prints the table: each figure is the
   median over rounds, each ratio the median of the rounds' ratios, and the rounds' own ratios
   beside it — on a shared host the spread between rounds is part of the result.

Ratios taken in one run are the only figures that count on a shared machine.
"""
import argparse
import json
import os
import statistics
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


# The smollm2 shape's counts: a training step takes tens of seconds, a GRPO step about a minute.
SMOLLM2_TRAIN = ["--warmup", "1", "--steps", "2"]
SMOLLM2_GRPO_STEPS, SMOLLM2_SFT_STEPS = "2", "0"


def measure_round(python, grove_bin, models) -> tuple:
    """One round: Grove then the reference on each model and part, back to back."""
    ref_dir = SHARED / "reference"  # the scripts only read from their folder (and ../fixtures)
    smollm2 = Path(__file__).resolve().parent / "reference_smollm2.py"
    grove, torch, trl = [], [], []
    for m in (m for m in ("small", "big") if m in models):
        for gparts, tparts in (("train,forward", "train"), ("generate", "generate")):
            grove += run([grove_bin, "bench", "--isolate", "--models", m, "--parts", gparts], cwd=ROOT)
            torch += run([python, ref_dir / "bench_torch.py", "--isolate", "--skip-matmul", "--models", m, "--parts", tparts], cwd=WORK)
    if "small" in models:
        grove += run([grove_bin, "bench", "--isolate", "--models", "small", "--parts", "grpo"], cwd=ROOT)
        trl += run([python, ref_dir / "bench_trl_grpo.py", "--model", "small", "--beta", "0.04"], cwd=WORK)
    if "smollm2" in models:
        grove += run([grove_bin, "bench", "--isolate", "--models", "smollm2", "--parts", "train"] + SMOLLM2_TRAIN, cwd=ROOT)
        torch += run([python, smollm2, "train"] + SMOLLM2_TRAIN, cwd=WORK)
        grove += run([grove_bin, "bench", "--isolate", "--models", "smollm2", "--parts", "grpo", "--grpo-steps", SMOLLM2_GRPO_STEPS,
                      "--sft-steps", SMOLLM2_SFT_STEPS, "--beta", "0.04"], cwd=ROOT)
        trl += run([python, smollm2, "grpo", "--steps", SMOLLM2_GRPO_STEPS, "--sft-steps", SMOLLM2_SFT_STEPS, "--beta", "0.04"], cwd=WORK)
    return grove, torch, trl


def table_rows(grove, torch, trl, models) -> list:
    """(name, Grove figure, reference figure, ratio) for one round."""
    rows = []
    if "smollm2" in models:
        g, t = find(grove, "grove_train_step", "smollm2"), find(torch, "torch_train_step", "smollm2")
        rows.append(("training step, smollm2 (tokens/s)", g["tokens_per_s"], t["tokens_per_s"], g["tokens_per_s"] / t["tokens_per_s"]))
        gg, tg = find(grove, "grove_grpo_step", "smollm2"), find(trl, "trl_grpo_summary", "smollm2")
        rows.append(("GRPO step, smollm2 (s/step; ratio = TRL/Grove)", gg["median_step_s"], tg["median_step_s"],
                     tg["median_step_s"] / gg["median_step_s"]))
        rows.append(("peak memory, smollm2 train_step (MiB; ratio = torch/Grove)", g["peak_rss_mb"], t["peak_rss_mb"],
                     t["peak_rss_mb"] / g["peak_rss_mb"]))
        tp = find(trl, "trl_grpo_peak", "smollm2")
        rows.append(("peak memory, smollm2 GRPO (MiB; ratio = TRL/Grove)", gg["peak_rss_mb"], tp["peak_rss_mb"],
                     tp["peak_rss_mb"] / gg["peak_rss_mb"]))
    if not {"small", "big"} <= set(models):
        return rows
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
    # Grove's sgemm at 2048³, measured at the start of each of its processes: the median of the round.
    peak = statistics.median(r["sgemm_2048_gflops"] for r in grove if r.get("bench") == "grove_env")
    for m in ("small", "big"):
        g, t = find(grove, "grove_train_step", m), find(torch, "torch_train_step", m)
        rows.append((f"training GFLOP/s, {m} (share of Grove's sgemm)", g["approx_model_gflops"], t["approx_model_gflops"],
                     g["approx_model_gflops"] / peak))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="times the whole paired sequence runs")
    ap.add_argument("--models", default="small,big", help="small,big (the reference's shapes) and/or smollm2")
    args = ap.parse_args()
    models = args.models.split(",")
    WORK.mkdir(parents=True, exist_ok=True)
    python = reference_python()
    subprocess.run(["swift", "build", "-c", "release", "--product", "grove"], cwd=ROOT, check=True)
    grove_bin = ROOT / ".build" / "release" / "grove"
    rounds = [measure_round(python, grove_bin, models) for _ in range(args.rounds)]
    with open(WORK / "results.jsonl", "w") as f:
        for i, records in enumerate(rounds):
            for r in records[0] + records[1] + records[2]:
                f.write(json.dumps(dict(r, round=i + 1)) + "\n")

    tables = [table_rows(*records, models) for records in rounds]
    grove, torch, trl = rounds[0]
    env = find(grove, "grove_env")
    print(f"\nGrove {env['grove']} (BLAS {env['blas_core']}, {env['blas_threads']} threads) vs "
          f"torch {torch[0].get('torch', '?')} / TRL {find(trl, 'trl_grpo_summary').get('trl', '?') if trl else '?'}, "
          f"{len(rounds)} round{'s' if len(rounds) > 1 else ''}, medians\n")
    print("| measurement | Grove | reference | ratio | each round |\n|---|---:|---:|---:|---:|")
    for i, (name, *_) in enumerate(tables[0]):
        gv, tv = (statistics.median(t[i][k] for t in tables) for k in (1, 2))
        ratios = [t[i][3] for t in tables]
        fmt = (lambda r: f"{r:.0%}") if "GFLOP" in name else (lambda r: f"{r:.2f}x")
        digits = 3 if max(gv, tv) < 10 else 1
        print(f"| {name} | {gv:,.{digits}f} | {tv:,.{digits}f} | {fmt(statistics.median(ratios))} | "
              f"{' / '.join(fmt(r) for r in ratios)} |")
    print(f"\nraw lines: {WORK / 'results.jsonl'}")


if __name__ == "__main__":
    main()
