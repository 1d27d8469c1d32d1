"""Memory stays bounded over a long session: caches are sized by the bytes they keep."""

from __future__ import annotations

import os

from hotswap._bounded import SizedCache


def test_a_sized_cache_lets_the_least_recent_go_first_by_bytes_and_by_count():
    cache: SizedCache[str, int] = SizedCache(max_bytes=100, max_items=3)
    cache.put("a", 1, 40)
    cache.put("b", 2, 40)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3, 40)  # 120 bytes: b, the least recent, goes
    assert (cache.get("b"), cache.get("a"), cache.get("c")) == (None, 1, 3)
    cache.put("d", 4, 1)
    cache.put("e", 5, 1)  # 4 entries: a goes
    assert cache.get("a") is None and len(cache) == 3


def test_a_sized_cache_keeps_the_entry_just_put_however_big():
    cache: SizedCache[str, int] = SizedCache(max_bytes=100, max_items=10)
    cache.put("small", 1, 10)
    cache.put("big", 2, 500)
    assert cache.get("big") == 2 and cache.get("small") is None and cache.size == 500


def resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


BIG = 'BLOB = "' + "x" * 2_000_000 + '"\n\ndef f():\n    return VERSION\n'


def test_a_big_module_edited_again_and_again_keeps_memory_flat(story, cell):
    edit = story(BIG.replace("VERSION", "0"))
    for version in range(1, 11):
        edit(BIG.replace("VERSION", str(version)))
        assert cell("m.f()") == version
    before = resident_mib()
    for version in range(11, 51):
        edit(BIG.replace("VERSION", str(version)))
        assert cell("m.f()") == version
    grown = resident_mib() - before
    assert grown < 60, f"40 edits of a 2 MB module kept {grown:.0f} MiB more"


def test_what_a_big_module_keeps_after_its_first_edits_stays_near_the_caches_bound(story, cell):
    """The parsed texts kept are sized by what they hold (text, lines, tree: about three times
    the text), not by the text alone: what 5 edits of a 2 MB module keep (Python objects, by
    tracemalloc) is the 16 MiB the parse cache allows and the versions that run, not 29 MiB."""
    import gc
    import tracemalloc

    edit = story(BIG.replace("VERSION", "0"))
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for version in range(1, 6):
            edit(BIG.replace("VERSION", str(version)))
            assert cell("m.f()") == version
        gc.collect()
        kept = (tracemalloc.get_traced_memory()[0] - before) / 2**20
    finally:
        tracemalloc.stop()
    assert kept < 20, f"5 edits of a 2 MB module keep {kept:.1f} MiB"
