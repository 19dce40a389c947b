"""Write examples/demo_alpaca.json: a small Alpaca-format dataset of our own, for the README demo.

Instructions come from templates over a few domains; each has answers of deliberately varied
quality (a careful one, a terse one, an off-target one), so selection has something to choose.
Deterministic: rerunning writes the same file.
"""

import json
import random
from pathlib import Path

DOMAINS = {
    "cooking": ["boil pasta", "make a vinaigrette", "bake bread", "cook rice", "roast vegetables", "poach an egg"],
    "programming": ["reverse a list in Python", "read a file in Python", "write a for loop in JavaScript",
                    "sort a dictionary by value in Python", "handle an exception in Java", "define a function in Go"],
    "science": ["photosynthesis", "the water cycle", "gravity", "plate tectonics", "the immune system", "evaporation"],
    "history": ["the printing press", "the Roman Empire", "the Industrial Revolution", "the Silk Road",
                "the French Revolution", "the moon landing"],
    "finance": ["saving for retirement", "building an emergency fund", "paying off debt", "making a budget",
                "index funds", "compound interest"],
    "writing": ["a cover letter", "a thank-you note", "a product description", "a short poem about autumn",
                "a tweet announcing a sale", "a haiku about rain"],
}
TEMPLATES = {
    "cooking": ("Explain how to {x}.", "Explain how to {x} for a beginner."),
    "programming": ("Show how to {x}.", "How do I {x}?"),
    "science": ("Explain {x} in simple terms.", "Give a short overview of {x}."),
    "history": ("Summarize the importance of {x}.", "Why was {x} significant?"),
    "finance": ("Give advice on {x}.", "What should I know about {x}?"),
    "writing": ("Write {x}.", "Compose {x}."),
}


def answers(domain: str, x: str, rng: random.Random) -> list[str]:
    steps = [f"First, prepare what you need for {x}.", f"Next, follow the core steps of {x} carefully.",
             f"Check the result and adjust: small corrections matter when it comes to {x}.",
             "Finally, review what worked so the next attempt is easier."]
    careful = (f"Here is a clear guide to {x}.\n\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
               + f"\n\nIn short: {x} rewards patience and attention to detail.")
    terse = f"{x.capitalize()}: just do it."
    off = f"There are many things to say about {domain}. It is a broad topic and opinions differ."
    out = [careful, terse, off]
    rng.shuffle(out)
    return out


def build(seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for domain, topics in DOMAINS.items():
        for x in topics:
            for template in TEMPLATES[domain]:
                for k, output in enumerate(answers(domain, x, rng)):
                    records.append({"instruction": template.format(x=x),
                                    "input": "" if k != 1 else f"Audience: {rng.choice(['students', 'parents', 'engineers'])}",
                                    "output": output, "id": f"demo-{len(records):04d}", "domain": domain})
    return records


if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "examples" / "demo_alpaca.json"
    target.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {target}")
