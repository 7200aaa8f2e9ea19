# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""Errors raised by the collection's core and adapters.

Everything raised on purpose derives from :class:`SelfHealError`, so a module shell needs exactly one ``except``
clause to turn a failure into ``fail_json(msg=str(exc))``. Adapters wrap third-party exceptions
(``raise ApiError(f"cannot scale {ns}/{name}: {reason}") from exc``) so that messages say what failed and why.
"""

from __future__ import annotations


class SelfHealError(Exception):
    """Base class of every error the collection raises deliberately."""


class ValidationError(SelfHealError):
    """An input document (intent, policy, snapshot) does not follow its schema.

    ``str()`` reads ``<source>: <path>: <problem>``, for example
    ``intents/shop.yml: checkout.objectives.max_latency_ms: must be a number > 0, got "fast"``.
    The path is omitted when the problem concerns the whole document. When a document has several problems,
    the first one (in document order) is the message and ``problems`` lists them all as formatted strings.
    """

    def __init__(self, source: str, path: str, problem: str, problems: tuple[str, ...] = ()) -> None:
        self.source = source
        self.path = path
        self.problem = problem
        message = ": ".join(part for part in (source, path, problem) if part)
        self.problems: tuple[str, ...] = problems or (message,)
        super().__init__(message)


class MissingLibraryError(SelfHealError):
    """A Python library the feature needs is not installed on the host that runs it.

    Module shells report it with ``missing_required_lib(exc.library)`` and ``exception=exc.traceback``.
    """

    def __init__(self, library: str, traceback: str | None = None) -> None:
        self.library = library
        self.traceback = traceback
        super().__init__(f"the Python library {library!r} is required but cannot be imported")


class DecisionError(SelfHealError):
    """The decision engine was handed something it cannot decide on (a programming error upstream)."""


class ApiError(SelfHealError):
    """A call to the Kubernetes API (or another control plane) failed."""


class GatherError(SelfHealError):
    """Observed state (metrics, workload, nodes ...) could not be collected."""


class JournalError(SelfHealError):
    """The decision journal could not be opened, read or written."""


class JournalUnavailable(JournalError):
    """The journal's server cannot be reached (refused, down, the connection lost): nothing the journal holds can be
    seen, so nothing that depends on it may be decided. Unlike a bad statement, it passes once the server is back."""
