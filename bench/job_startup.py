"""CPU time the demo's jobs spend starting: a fresh Python, Snakemake's script preamble and
each script's imports, times the number of jobs of each rule in the demo's plan.

Every job of a `script:` rule is a new interpreter, so a job pays its imports again however
little it computes (torch alone is several CPU-seconds). Printed against a bare Python start
measured in the same run, and in all, to set beside `bench/demo_time.py`'s CPU total.

    python bench/job_startup.py
    python bench/job_startup.py --rules table_s2 score_predictions --repeats 1
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a script's first use adds to its imports: torch.optim's first optimiser imports
# torch._dynamo (torch._compile._disable_dynamo), whichever optimiser and options.
FIRST_USE = {
    "train_models": "import torch\ntorch.optim.Adadelta([torch.zeros(1, requires_grad=True)])",
    "pretrain_encoder": "import torch\ntorch.optim.Adam([torch.zeros(1, requires_grad=True)])",
}


def rule_scripts() -> dict[str, str]:
    """Each rule's script (its file name without .py), from the rule files."""
    scripts = {}
    for path in sorted((ROOT / "rules").glob("*.smk")):
        blocks = re.split(r"^\s*(?:rule|checkpoint) (\w+):", path.read_text(), flags=re.M)
        for name, body in zip(blocks[1::2], blocks[2::2], strict=True):
            script = re.search(r"^\s+script:\s+\"[./]*workflow/scripts/(\w+)\.py\"", body, re.M)
            if script:
                scripts[name] = script.group(1)
    return scripts


def demo_jobs() -> Counter:
    """Jobs per rule that the demo plans from scratch (a dry run in an empty folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(ROOT / "Snakefile")]
            + ["--configfile", str(ROOT / "config" / "demo.yaml"), "--directory", tmp],
            capture_output=True,
            text=True,
            check=True,
        )
    return Counter(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", run.stdout, re.M))


def import_block(script: str) -> str:
    """The script's top-level imports, as Snakemake runs them after its own preamble."""
    lines, open_paren = ["from snakemake import script"], False
    for line in (ROOT / "workflow" / "scripts" / f"{script}.py").read_text().splitlines():
        if line.startswith(("from ", "import ")):
            lines.append(line)
            open_paren = line.rstrip().endswith("(")
        elif open_paren:  # the names of a parenthesised import
            lines.append(line)
            open_paren = not line.startswith(")")
    return "\n".join([*lines, FIRST_USE.get(script, "")])


def cpu_seconds(code: str, repeats: int) -> float:
    """Least CPU time (user + system) of a fresh interpreter running ``code``."""
    best = float("inf")
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        best = min(best, used)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", nargs="*", help="only these rules (default: every one)")
    parser.add_argument("--repeats", type=int, default=3, help="starts per script; least kept")
    args = parser.parse_args()
    jobs, scripts = demo_jobs(), rule_scripts()
    timed = {rule for rule in jobs if rule in scripts}
    if set(args.rules or ()) - timed:
        parser.error(f"not a rule with a script in the demo's plan: {set(args.rules) - timed}")
    rules = [rule for rule in (args.rules or jobs) if rule in timed]
    bare = cpu_seconds("pass", args.repeats)
    print(f"bare Python start: {bare:.3f} CPU-s  x 1")
    total = 0.0
    for rule in sorted(rules, key=lambda r: -jobs[r]):
        each = cpu_seconds(import_block(scripts[rule]), args.repeats)
        total += each * jobs[rule]
        print(
            f"{rule:22s} {jobs[rule]:3d} jobs x {each:5.2f} CPU-s = {each * jobs[rule]:6.1f}"
            f"   x {each / bare:5.0f} a bare start"
        )
    print(f"start-up of {sum(jobs[r] for r in rules)} jobs: {total:.0f} CPU-s")


if __name__ == "__main__":
    main()
