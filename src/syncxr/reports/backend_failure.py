"""What a backend answers in place of a result it could not produce because it failed (the server
was unreachable, timed out, answered 5xx or garbage on every attempt, refused the credentials).

Such a failure says nothing about the request: the same request may succeed on the next run. The
generation pipelines therefore keep the sample it belongs to as *retryable*, never as dropped, and a
re-run works on exactly those samples. A content failure (a text the NER rejects, an empty answer,
a request the server refuses as malformed) stays what it was: an attempt that did not succeed.
"""

from __future__ import annotations


class BackendFailure:
    """Stands in a backend's list of answers where the backend failed; `reason` says how
    (e.g. "connection_errors", "timeouts", "http_503")."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self) -> str:
        return f"BackendFailure({self.reason!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, BackendFailure) and other.reason == self.reason

    def __hash__(self) -> int:
        return hash(("BackendFailure", self.reason))


def is_backend_failure(answer) -> bool:
    return isinstance(answer, BackendFailure)
