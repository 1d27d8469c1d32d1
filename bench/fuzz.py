#!/usr/bin/env python
"""The reload fuzzer, long run: many random edit sequences under hotswap, each checked
against fresh imports after every cell (the quick run is ``tests/test_fuzz.py``).

    python bench/fuzz.py --sequences 10000            # the long run
    python bench/fuzz.py --sequences 1000 --jobs 2    # two processes (each a shell and an oracle)
    python bench/fuzz.py --seed 7 --only 123          # replay sequence 123 of seed 7, in full
    python bench/fuzz.py --seed 7 --only 123 --shrink # ... and shrink it to a smallest failing one
    python bench/fuzz.py --no-avoid                   # also generate the avoided patterns

Prints progress to stderr, then ``sequences: N, divergences: D, crashes: C`` (D: sequences
whose modules or old objects differed from a fresh import; C: sequences where hotswap had an
internal error, a cell failed, the oracle failed, or the process hung or died). Exit code 1 if
D or C > 0. Sequence ``i`` of seed ``s`` is always the same (``random.Random(f"{s}:{i}")``), so
any reported one can be replayed with ``--seed s --only i``. Run it with the interpreter that
has IPython and hotswap installed (``/tmp/venv/bin/python`` on the dev machine); ``--src DIR``
puts DIR (a ``src`` folder) first on ``sys.path``.

The generator, the session and the oracle are in ``tests/fuzz_support.py`` and
``tests/fuzz_oracle.py``; the generator avoids the patterns of ``fuzz_support.KNOWN_BUGS``
and ``DOCUMENTED_LIMITS`` unless ``--no-avoid``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
TAG = "FUZZ-RESULT "


def sequence_of(seed: int, index: int, max_steps: int, avoid: frozenset[str], life: int | None = None):  # type: ignore[no-untyped-def]
    import fuzz_support as fz

    life = fz.LIFE_PERCENT if life is None else life
    return fz.generate_sequence(fz.RandomChooser(random.Random(f"{seed}:{index}")), max_steps, avoid, life)


# -- child: runs sequences in one shell ---------------------------------------------------


def child(args: argparse.Namespace) -> int:
    import faulthandler

    import fuzz_support as fz

    avoid = frozenset() if args.no_avoid else fz.ALL_KNOWN
    root = tempfile.mkdtemp(prefix="hotswap-fuzz-")
    sys.path.insert(0, root)
    sys.dont_write_bytecode = False  # as on a default install
    shell = fz.make_shell()
    out = sys.stdout
    with fz.Oracle() as oracle:
        runner = fz.Runner(shell, Path(root), oracle, avoid=avoid)
        for index in range(args.start, args.sequences, args.step):
            faulthandler.dump_traceback_later(args.hang, exit=True)  # a hang: the parent counts a crash
            started = time.perf_counter()
            sequence = sequence_of(args.seed, index, args.max_steps, avoid, args.life)
            try:
                result = runner.run(sequence)
            except Exception as error:  # noqa: BLE001 - the harness or hotswap blew up: a crash
                import traceback

                record = {
                    "index": index,
                    "steps": 0,
                    "divergences": [],
                    "crashes": [f"exception while running the sequence: {type(error).__name__}: {error}\n{traceback.format_exc()}"],
                    "report": repr(sequence),
                }
            else:
                record = {
                    "index": index,
                    "steps": result.steps,
                    "divergences": [str(d) for d in result.divergences],
                    "crashes": result.crashes,
                    "report": result.report() if not result.ok else "",
                    "excluded": result.excluded,
                }
                if not result.ok and args.shrink:
                    shrunk = shrunk_result(runner, result)
                    record["report"] += "\n\nSHRUNK (the same first problem):\n" + shrunk.report()
                    result = shrunk
                if not result.ok and args.texts:
                    record["report"] += "\n" + texts_of(result)
            record["seconds"] = time.perf_counter() - started
            out.write(TAG + json.dumps(record) + "\n")
            out.flush()
        faulthandler.cancel_dump_traceback_later()
    return 0


def first_problem(result) -> str | None:  # type: ignore[no-untyped-def]
    if result.crashes:
        return "crash: " + signature(result.crashes[0])
    if result.divergences:
        return "divergence: " + signature(str(result.divergences[0]))
    return None


def shrunk_result(runner, result):  # type: ignore[no-untyped-def]
    """Run smaller and smaller variants of a failing sequence; the smallest that fails the same way."""
    import fuzz_support as fz

    wanted = first_problem(result)
    smallest = [result]

    def fails(candidate: object) -> bool:
        try:
            outcome = runner.run(candidate)
        except Exception:  # noqa: BLE001 - another failure: not the one being shrunk
            return False
        if first_problem(outcome) != wanted:
            return False
        smallest[0] = outcome
        return True

    fz.shrink(result.sequence, fails)
    return smallest[0]


def texts_of(result) -> str:  # type: ignore[no-untyped-def]
    lines = []
    for module, texts in result.texts.items():
        for number, text in enumerate(texts):
            lines.append(f"----- {module}, save {number} -----\n{text}")
    return "\n".join(lines)


# -- parent: children, progress, summary ------------------------------------------------------


class Job:
    def __init__(self, args: argparse.Namespace, start: int, log: Path) -> None:
        self.args, self.next, self.log = args, start, log
        self.process: subprocess.Popen[str] | None = None
        self.buffer = ""

    def spawn(self) -> None:
        command = [sys.executable, __file__, "--child", "--start", str(self.next), "--step", str(self.args.jobs)]
        command += ["--seed", str(self.args.seed), "--sequences", str(self.args.sequences)]
        command += ["--max-steps", str(self.args.max_steps), "--hang", str(self.args.hang)]
        if self.args.life is not None:
            command += ["--life", str(self.args.life)]
        command += ["--no-avoid"] * self.args.no_avoid + ["--texts"] * self.args.texts + ["--shrink"] * self.args.shrink
        if self.args.src:
            command += ["--src", self.args.src]
        stderr = open(self.log, "a")  # noqa: SIM115 - kept open by the child
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1, env=child_env(self.args))
        stderr.close()

    @property
    def done(self) -> bool:
        return self.next >= self.args.sequences


def child_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    paths = [args.src] if args.src else []
    paths += [str(TESTS)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def signature(problem: str) -> str:
    import fuzz_support as fz

    return fz.signature(problem)


def parent(args: argparse.Namespace, first: int = 0) -> int:
    """Sequences ``first`` .. ``args.sequences - 1``, spread over ``args.jobs`` children."""
    logs = Path(tempfile.mkdtemp(prefix="hotswap-fuzz-logs-"))
    jobs = [Job(args, first + k, logs / f"child{k}.log") for k in range(args.jobs)]
    for job in jobs:
        if not job.done:
            job.spawn()
    started = time.monotonic()
    ran = divergent = crashed = steps = 0
    kinds: collections.Counter[str] = collections.Counter()
    excluded: collections.Counter[str] = collections.Counter()
    shown = 0
    last_progress = started

    def report(record: dict[str, object]) -> None:
        nonlocal ran, divergent, crashed, steps, shown
        ran += 1
        steps += int(record.get("steps", 0))  # type: ignore[call-overload]
        excluded.update(record.get("excluded") or {})  # type: ignore[arg-type]
        bad = False
        if record["divergences"]:
            divergent += 1
            bad = True
            kinds["divergence: " + signature(record["divergences"][0])] += 1  # type: ignore[index]
        if record["crashes"]:
            crashed += 1
            bad = True
            kinds["crash: " + signature(record["crashes"][0])] += 1  # type: ignore[index]
        if bad and shown < args.show:
            shown += 1
            print(f"\n=== sequence {record['index']} (replay: --seed {args.seed} --only {record['index']}) ===", file=sys.stderr)
            print(record["report"], file=sys.stderr)

    while any(job.process is not None for job in jobs):
        streams = {job.process.stdout: job for job in jobs if job.process is not None and job.process.stdout}
        ready, _, _ = select.select(list(streams), [], [], 5.0)
        for stream in ready:
            job = streams[stream]
            line = stream.readline()
            if line:
                if line.startswith(TAG):
                    record = json.loads(line[len(TAG) :])
                    job.next = int(record["index"]) + args.jobs
                    report(record)
                continue
            code = job.process.wait()  # type: ignore[union-attr]
            job.process = None
            if job.done:
                continue
            # The child died or hung (faulthandler ended it) in sequence job.next: a crash.
            tail = job.log.read_text(errors="replace")[-3000:] if job.log.exists() else ""
            report({"index": job.next, "steps": 0, "divergences": [], "crashes": [f"the process died (exit {code}) in this sequence\n{tail}"], "report": f"process died (exit {code}); its stderr ends with:\n{tail}"})
            job.next += args.jobs
            if not job.done:
                job.spawn()
        now = time.monotonic()
        if now - last_progress > args.progress:
            last_progress = now
            rate = ran / (now - started)
            eta = (args.sequences - first - ran) / rate if rate else float("inf")
            print(f"  {ran} sequences, {divergent} divergent, {crashed} crashed, {rate:.1f}/s, about {eta / 60:.0f} min left", file=sys.stderr)

    elapsed = time.monotonic() - started
    print(file=sys.stderr)
    if kinds:
        print("What went wrong (first problem of each sequence, grouped):", file=sys.stderr)
        for kind, count in kinds.most_common():
            print(f"  {count:5d}  {kind}", file=sys.stderr)
    if excluded:
        print("Old objects no longer compared (documented limits):", file=sys.stderr)
        for why, count in excluded.most_common():
            print(f"  {count:7d}  {why}", file=sys.stderr)
    print(
        f"{ran / elapsed:.2f} sequences/s, {steps / elapsed:.1f} cells/s, {steps} edit steps, {elapsed:.0f} s, "
        f"{args.jobs} process(es), seed {args.seed}, known patterns {'generated' if args.no_avoid else 'avoided'}"
    )
    print(f"sequences: {ran}, divergences: {divergent}, crashes: {crashed}")
    return 1 if divergent or crashed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=10_000, help="how many sequences (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="sequence i of seed s is always the same")
    parser.add_argument("--jobs", type=int, default=1, help="processes running sequences (each with its oracle)")
    parser.add_argument(
        "--life", type=int, default=None, help="percent of steps that are a working tree's life event (default: fuzz_support.LIFE_PERCENT)"
    )
    parser.add_argument("--max-steps", type=int, default=6, help="edit steps per sequence, at most (default 6)")
    parser.add_argument("--only", type=int, help="run only sequence ONLY, and print it in full")
    parser.add_argument("--no-avoid", action="store_true", help="also generate the patterns the generator avoids")
    parser.add_argument("--show", type=int, default=3, help="print the reports of the first SHOW failing sequences")
    parser.add_argument("--texts", action="store_true", help="with each failing report, print every text saved")
    parser.add_argument("--shrink", action="store_true", help="report each failing sequence shrunk (same first problem)")
    parser.add_argument("--src", help="a src folder to put first on sys.path (default: the installed hotswap)")
    parser.add_argument("--hang", type=float, default=300.0, help="seconds after which a sequence counts as hung")
    parser.add_argument("--progress", type=float, default=30.0, help="seconds between progress lines")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--step", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.only is not None:  # one child, one sequence, in full
        args.sequences, args.jobs, args.show, args.texts = args.only + 1, 1, 1, True
        return parent(args, first=args.only)
    return parent(args)


if __name__ == "__main__":
    if "--src" in sys.argv:
        sys.path.insert(0, sys.argv[sys.argv.index("--src") + 1])
    sys.path.insert(0, str(TESTS))
    sys.exit(main())
