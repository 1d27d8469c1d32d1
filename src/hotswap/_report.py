"""Report: one short, plain message per outcome, naming module, file and line."""

from __future__ import annotations

from ._outcomes import Failure, Reloaded

__all__ = ["ASKED_FOR_WHOLE", "describe_failure", "describe_reload", "describe_stayed_old", "describe_whole_rerun"]

_MAX_NAMES = 8
ASKED_FOR_WHOLE = "asked for with --full"  # the one whole re-run the user chose: never warned of


def _names(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:_MAX_NAMES])
    return shown + (f" and {len(names) - _MAX_NAMES} more" if len(names) > _MAX_NAMES else "")


def describe_reload(outcome: Reloaded) -> str:
    """``hotswap: reloaded mylib (upgraded f, Model; added g)``."""
    parts = []
    for label, names in (
        ("upgraded", outcome.upgraded),
        ("added", outcome.added),
        ("removed", outcome.removed),
        ("new value for", outcome.rebound),
    ):
        if names:
            parts.append(f"{label} {_names(names)}")
    if outcome.whole_module:
        parts.append(f"whole module re-run: {outcome.whole_module}")
    elif outcome.reran:
        parts.append(f"re-ran {_names(outcome.reran)}")
    if outcome.rebound_elsewhere:
        parts.append(f"re-bound {_names(outcome.rebound_elsewhere)}")
    detail = f" ({'; '.join(parts)})" if parts else ""
    if outcome.after:
        return f"hotswap: updated {outcome.module} after {', '.join(outcome.after)} changed{detail}"
    return f"hotswap: reloaded {outcome.module}{detail}"


def describe_whole_rerun(outcome: Reloaded) -> str | None:
    """A module re-run whole that the user did not ask for: its state was reset, say so."""
    if not outcome.whole_module or outcome.whole_module == ASKED_FOR_WHOLE:
        return None
    return (
        f"hotswap: {outcome.module} was re-run whole ({outcome.whole_module}): "
        "the values it computed at import were computed again"
    )


def describe_stayed_old(outcome: Reloaded) -> str | None:
    """Objects that kept their old code: the user must hear of each, once."""
    if not outcome.stayed_old:
        return None
    lines = [f"hotswap: reloaded {outcome.module}, but some objects could not be upgraded in place:"]
    lines += [f"  {what}: {why}" for what, why in outcome.stayed_old]
    return "\n".join(lines)


def describe_failure(outcome: Failure) -> str:
    if outcome.compiled:
        return (
            f"hotswap: the compiled extension {outcome.module} was rebuilt ({outcome.path});\n"
            "  a running Python cannot load a new build of a C extension: restart (the kernel) "
            "to use it. The old build keeps running."
        )
    if outcome.deleted:
        return (
            f"hotswap: the file of {outcome.module} was deleted ({outcome.path});\n"
            f"  {outcome.module} keeps running its last version; it is watched again if the file comes back."
        )
    head = _what_failed(outcome) + _offending_line(outcome)
    return f"{head}\n  {_state(outcome)}."


def _what_failed(outcome: Failure) -> str:
    """The first line(s): what could not be applied, why, and where."""
    where = outcome.path if outcome.line is None else f"{outcome.path}:{outcome.line}"
    if outcome.internal:
        return f"hotswap: internal error in hotswap {_while(outcome)} ({where}): {outcome.error}\n  {_REPORT_IT}"
    if outcome.interrupted:
        return f"hotswap: reloading {outcome.module} was interrupted at {where}"
    if outcome.after:
        return (
            f"hotswap: {outcome.module} was not updated after {', '.join(outcome.after)} "
            f"changed: {outcome.error}\n  at {where}"
        )
    return f"hotswap: [autoreload of {outcome.module} failed: {outcome.error}]\n  at {where}"  # IPython's words


_REPORT_IT = "not an error in your code: please report it to hotswap (%autoreload -l logs the traceback)"


def _while(outcome: Failure) -> str:
    """What hotswap was doing when it failed."""
    if outcome.ran:
        return f"after reloading {outcome.module}, while what imports from it followed"
    if outcome.after:
        return f"while {outcome.module} followed {', '.join(outcome.after)}"
    return f"while reloading {outcome.module}"


def _offending_line(outcome: Failure) -> str:
    """The user's line that failed, with a caret under the column when known ('' for none)."""
    if outcome.internal or outcome.interrupted or not outcome.source_line:
        return ""
    caret = "\n    " + " " * (outcome.column - 1) + "^" if outcome.column else ""
    return f"\n    {outcome.source_line}{caret}"


def _state(outcome: Failure) -> str:
    """The state the module was left in, and what tries again."""
    module = outcome.module
    if outcome.ran:  # (internal) its update was done; passing it on to who imports from it was not
        return f"{module} runs its new version; what imports from it follows at its next change"
    if outcome.internal and outcome.after:
        return f"{module} keeps its previous values; it follows {', '.join(outcome.after)} at their next change"
    return f"{module} keeps running its previous version; {_how_to_retry(outcome)}"


def _how_to_retry(outcome: Failure) -> str:
    """Nothing changed on disk after an interruption or a hotswap bug: only asking again retries."""
    if outcome.interrupted or outcome.internal:
        return "run %autoreload now to try again"
    return "save a fixed file to try again"
