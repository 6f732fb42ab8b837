"""Writes chat_prompts.jsonl (500 training prompts) and chat_eval.jsonl (100 held-out prompts):
2-digit addition and subtraction (non-negative results) as TRL conversational prompts for an
instruct model, checked by data.task last_number. No eval question occurs in train.
chat_sft.jsonl holds the same 500 training prompts with a demonstration reply ("59 + 63 = 122"),
for the SFT control (Recipes/smollm2-arithmetic-sft.yaml).
    python3 Datasets/arithmetic/make_chat_prompts.py
"""
import json, os, random

def problem(rng):
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    if rng.random() < 0.5:
        return "add2", f"{a} + {b}", a + b
    a, b = max(a, b), min(a, b)
    return "sub2", f"{a} - {b}", a - b

def rows(count, seed, prefix, excluding):
    rng, out, seen = random.Random(seed), [], set(excluding)
    while len(out) < count:
        level, question, answer = problem(rng)
        content = f"What is {question}? Give the final answer as a number at the end."
        if content in seen: continue
        seen.add(content)
        out.append({"answer": str(answer), "id": f"{prefix}-{len(out)}", "level": level,
                    "prompt": [{"role": "user", "content": content}], "question": question})
    return out

def write(path, rows):
    with open(path, "w") as f:
        for r in rows:
            r = {k: v for k, v in r.items() if k != "question"}
            f.write(json.dumps(r, sort_keys=True) + "\n")

def demonstration(r):
    return dict(r, completion=[{"role": "assistant", "content": f"{r['question']} = {r['answer']}"}])

here = os.path.dirname(os.path.abspath(__file__))
train = rows(500, 0, "chat-0", [])
held = rows(100, 1, "chat-1", [r["prompt"][0]["content"] for r in train])
write(os.path.join(here, "chat_prompts.jsonl"), train)
write(os.path.join(here, "chat_eval.jsonl"), held)
write(os.path.join(here, "chat_sft.jsonl"), [demonstration(r) for r in train])
print(f"wrote {len(train)} training prompts (and their demonstrations) and {len(held)} held-out chat prompts to {here}")
