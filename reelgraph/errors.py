"""The one domain error type.

Every failure a user can cause or fix (bad input, a missing model, an
unreachable server) is raised as :class:`ReelgraphError`. The CLI turns it into
a three-part message and exit code 1; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class ReelgraphError(Exception):
    """A failure the user can understand and act on.

    Args:
        what: what went wrong, in one sentence.
        why: why it is a problem (optional).
        fix: how to fix it (optional).
    """

    def __init__(self, what: str, why: str | None = None, fix: str | None = None):
        self.what = what
        self.why = why
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = [self.what]
        if self.why:
            parts.append(f"Why: {self.why}")
        if self.fix:
            parts.append(f"Fix: {self.fix}")
        return "\n".join(parts)


def validation_problems(error, prefix: str = "", whole: str = "the input") -> list[str]:
    """``location: message`` for each problem a pydantic ``ValidationError`` lists, ``prefix`` before
    each location (``label.``), ``whole`` where a problem has no location (invalid JSON, say)."""
    return [f"{prefix + '.'.join(map(str, e['loc'])) or whole}: {e['msg']}" for e in error.errors()]
