#!/usr/bin/env python3
"""A TRL-style reward function run as a Grove external reward program.

TRL calls reward functions as f(prompts, completions, **columns) -> list[float | None].
Grove sends one JSON object per completion on stdin ({"prompt", "completion",
"completion_ids", "row"}) and reads one line per completion on stdout. This adapter turns
the one into the other, so an existing TRL reward function works unchanged.

Recipe:
    rewards:
      - external: {name: reasoning_length, command: "python3 Rewards/examples/trl_style_reward.py", timeout: 30}
"""
import json
import re
import sys


def reward_func(prompts, completions, answer, **kwargs):
    """Example: 1.0 when the text after the last '####' equals the reference answer, else 0.0
    (the row's fields, here `answer`, arrive as keyword lists, as TRL passes dataset columns)."""
    out = []
    for completion, reference in zip(completions, answer):
        match = re.findall(r"####\s*(-?[\d,]+)", completion)
        out.append(1.0 if match and match[-1].replace(",", "") == str(reference).strip() else 0.0)
    return out


def main():
    items = [json.loads(line) for line in sys.stdin if line.strip()]
    columns = {}
    for item in items:
        for key, value in item["row"].items():
            columns.setdefault(key, []).append(value)
    for key in list(columns):
        if key in ("prompt", "completion", "prompts", "completions"):
            del columns[key]  # those arrive as the positional lists
    rewards = reward_func([i["prompt"] for i in items], [i["completion"] for i in items], **columns)
    for r in rewards:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
