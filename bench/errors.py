"""Errors that mean bad input from the user, as opposed to bugs in the harness.

A ``UsageError`` names what is wrong (a key, an option, a file or a directory), says what is
wrong with it and what to do: ``str(e)`` is ``"SUBJECT: PROBLEM; HINT"``, which
``python -m bench`` prints as one line, ``error: SUBJECT: PROBLEM; HINT``, with exit status 2
and no traceback. Any other exception is a bug and keeps its traceback. It subclasses
``ValueError``, so library callers that catch ``ValueError`` keep working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UsageError(ValueError):
    """Bad user input: ``subject`` (key, option, file), ``problem`` and ``hint`` (what to do)."""

    def __init__(self, subject: str, problem: str, hint: str = "") -> None:
        self.subject, self.problem, self.hint = subject, problem, hint
        super().__init__(f"{subject}: {problem}" + (f"; {hint}" if hint else ""))

    def __reduce__(self):  # keep it picklable despite the three-argument constructor
        return type(self), (self.subject, self.problem, self.hint)


def did_you_mean(
    word: object, valid: Iterable[str], what: str = "valid", otherwise: str | None = None
) -> str:
    """A hint for an unknown name: the closest valid names, else ``otherwise`` or the list.

    >>> did_you_mean("activaton", ["activation", "depth"])
    "did you mean 'activation'?"
    >>> did_you_mean("zzz", ["relu", "tanh"])
    'valid: relu, tanh'
    """
    valid = list(valid)
    folded = {v.lower(): v for v in valid}  # 'MLP' -> 'mlp'
    close = difflib.get_close_matches(str(word).lower(), folded, n=3, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(repr(folded[c]) for c in close)}?"
    return otherwise if otherwise is not None else f"{what}: {', '.join(valid)}"
