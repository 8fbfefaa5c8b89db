"""What a backend answers in place of a result it could not produce because it failed (the server
was unreachable, timed out, answered 5xx or garbage on every attempt, refused the credentials).

Such a failure says nothing about the request: the same request may succeed on the next run. The
generation pipelines therefore keep the sample it belongs to as *retryable*, never as dropped, and a
re-run works on exactly those samples. An empty answer (HTTP 200 with no text) is such a failure
too. A content failure (a text the NER rejects, a request the server refuses for that request
alone, e.g. a prompt too long for the context) stays what it was: an attempt that did not succeed.

A server that refuses the requests because the client is set up wrongly (a model it does not
serve, parameters it rejects) raises `BackendMisconfigured` instead: nothing of the batch is kept
as a verdict, and the run stops before it commits the shard it was making.
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


class BackendMisconfigured(RuntimeError):
    """The server refused the requests for the client's setup, not for their content: `url`, the HTTP
    `status` and the server's own `message`. Re-running once the setup is fixed resumes the run."""

    def __init__(self, url: str, status: int, message: str, setup: str, why: str):
        self.url, self.status, self.message = url, status, message
        super().__init__(
            f"{url} refused the requests ({why}): HTTP {status}: {message}. This is the server's or the "
            f"client's setup ({setup}), not the samples: none was dropped or committed for it. Fix it "
            "and re-run the same command; it resumes where this run stopped"
        )
