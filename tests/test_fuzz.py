"""The reload fuzzer, quick run: random edit sequences, each cell checked against fresh imports.

After any sequence of edits the modules must be what a fresh import of the files gives (a broken
save: the last good version), and the user's old objects (instances, bound methods, names taken
with ``from m import``, closures, enum members) must behave like new ones, through a working
tree's life events too (branch switch and back, stash/pop, a folder moved and restored, symlinks,
bad bytes, a new shell, unload/load, exclude/include). See
``fuzz_support`` for the grammar, the exclusions (documented limits) and the known bugs, and
``bench/fuzz.py`` for the long run. ``HOTSWAP_FUZZ_EXAMPLES`` sets the number of sequences.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import random
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import fuzz_support as fz

EXAMPLES = int(os.environ.get("HOTSWAP_FUZZ_EXAMPLES", "150"))


@pytest.fixture(scope="module")
def oracle():
    with fz.Oracle() as worker:
        yield worker


@pytest.fixture
def runner(plain_shell, modules, oracle):
    """Runs sequences in the test's shell, files in ``tmp_path``; one hotswap session serves many
    sequences (loading it adopts every module of this process: slow under pytest)."""
    with fz.Runner(plain_shell, modules.root, oracle, prefix=modules.named("fz"), fresh_session=False) as runner:
        yield runner


_passed: set[str] = set()  # sequences that passed: Hypothesis draws some more than once


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(sequence=fz.sequences(max_steps=5))
def test_reloaded_modules_match_fresh_imports_and_old_objects_follow(runner, sequence):
    key = repr(sequence)
    if key in _passed:
        # Drawn again: passes without running. A sequence that failed is never in _passed, so
        # shrinking replays it; one that fails only sometimes is then reported by Hypothesis as
        # flaky, with the divergence of the run that failed (an assume() here hid it).
        return
    result = runner.run(sequence)

    assert result.ok, result.report()
    _passed.add(key)


def test_the_fuzzer_notices_a_reloader_that_reloads_nothing(plain_shell, modules, oracle):
    """Self-test: with ``%autoreload off`` the edits are not applied, and the fuzzer must say so."""
    failed = 0
    with fz.Runner(plain_shell, modules.root, oracle, prefix=modules.named("off"), mode="off") as runner:
        for seed in range(10):
            result = runner.run(fz.generate_sequence(fz.RandomChooser(random.Random(seed)), max_steps=4))
            assert not result.crashes, result.report()
            failed += bool(result.divergences)
    assert failed >= 7, f"only {failed} of 10 sequences diverged with reloading off"


def test_known_bugs_are_xfail_regression_tests():
    """Each known bug the generator avoids has its strict-xfail test, and vice versa; no other
    xfail; each known limit has its test."""
    path = Path(__file__).with_name("test_fuzz_regressions.py")
    strict, any_xfail = set(), set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            markers = [ast.unparse(d) for d in node.decorator_list if "xfail" in ast.unparse(d)]
            if markers:
                any_xfail.add(node.name)
            if any("strict=True" in m for m in markers):
                strict.add(node.name)
    assert any_xfail == strict, f"not strict: {sorted(any_xfail - strict)} (an xfail that passes checks nothing)"
    assert set(fz.KNOWN_BUGS.values()) == strict, (
        "fuzz_support.KNOWN_BUGS and the strict-xfail tests of test_fuzz_regressions.py differ: a "
        "fixed bug loses both its marker and its entry"
    )
    threads = Path(__file__).with_name("test_threads.py").read_text()
    unnamed = [test for test in fz.KNOWN_LIMITS.values() if f"def {test}(" not in threads]
    assert unnamed == [], "each known limit names the test in test_threads.py that pins down what it allows"


def test_a_thread_calling_the_module_during_edits_sees_whole_versions_and_never_crashes(shell, modules, cell):
    """A thread calls ``a.f()`` in a loop during 36 edits (some re-run the whole module).

    Each call must return the values of one version (or, across a reload, old values then new
    ones), from a version between those settled when the call started and ended, or raise the
    module's own ``Oops``; reloads must not stall; once the edits are done, every call returns
    the last version. Seeing a module half-way through a reload in the way a known limit allows
    (``fuzz_support.KNOWN_LIMITS``: newer values, then older ones, or an exception, while a reload
    may be running) is allowed; anything else fails.
    """
    b, a = modules.named("tb"), modules.named("ta")
    modules.write(b, fz.thread_version_b(0))
    modules.write(a, fz.thread_version_a(b, 0, whole=False))
    cell("%autoreload 2")
    cell(f"import {a} as ta\nfrom {a} import f as taken_f")
    module, taken = sys.modules[a], shell.user_ns["taken_f"]
    edits = 36
    k_of = {0: 0}  # K in effect after each edit
    calls = iter(range(10**12))

    def call():
        return module.f() if next(calls) % 2 else taken()

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: in the middle of reloads too
    try:
        with fz.ThreadWatch(call, (module.Oops,)) as watch:
            for n in range(1, edits + 1):
                k_of[n] = n if n % 3 == 0 else k_of[n - 1]
                if n % 3 == 0:
                    modules.write(b, fz.thread_version_b(n))
                modules.write(a, fz.thread_version_a(b, n, whole=(n // 7) % 2 == 1))
                cell("pass")
                watch.progress(n)
            time.sleep(0.2)  # calls with every edit done
    finally:
        sys.setswitchinterval(switch)

    assert cell("ta.TAG, taken_f is ta.f") == (edits, True)
    assert not watch.stalled, f"a reload stalled while the thread ran ({watch.stalled:.1f} s without progress)"
    assert watch.calls > 100, "the thread hardly ran"
    assert any(start == end == edits for start, end, _ in watch.observations), "no call after the last edit"
    problems = fz.check_thread_observations(
        watch.observations,
        lambda value, start, end: fz.thread_value_problem(value, start, end, lambda n: k_of[min(n, edits)], edits),
    )
    unexplained = {kind: seen for kind, seen in problems.items() if kind not in fz.KNOWN_LIMITS}
    assert unexplained == {}, "\n".join(line for seen in unexplained.values() for line in seen)


def test_a_sequence_stopped_by_a_crash_does_not_leave_the_next_one_a_stale_oracle_answer(plain_shell, modules, oracle):
    """The oracle is asked before the import cell; a crash there used to leave its answer unread,
    and every later sequence of the run read the answer meant for the one before (a harness crash)."""
    sequence = fz.generate_sequence(fz.RandomChooser(random.Random(0)), max_steps=2, life=0)
    b = dataclasses.replace(sequence.initial[0], broken=("raise", 0, 0))
    crashing = dataclasses.replace(sequence, initial=(b, *sequence.initial[1:]), adopt=False)
    with fz.Runner(plain_shell, modules.root, oracle, prefix=modules.named("stale")) as runner:
        assert runner.run(crashing).crashes, "the import cell of a module that raises must be a crash"
        result = runner.run(sequence)
    assert result.ok, result.report()
