"""Typed errors: one class per problem type of the daemon's error table.

Every error answer of paracorrd is an RFC 9457 problem object whose ``type``
is ``/problems/<name>``; :func:`error_for` maps it to the class below with
that name, so callers catch what they expect (``except paracorr.NotFound``)
and still have the whole problem object (``e.problem``).
"""


class ParacorrError(Exception):
    """An error answer of the daemon, or a failed job.

    ``status`` is the HTTP status (None for a job that failed), ``problem``
    the problem object as a dict (type, title, status, detail, instance and,
    for a field, ``errors``: JSON pointers into the request).
    """

    def __init__(self, problem, status=None):
        self.problem = dict(problem or {})
        self.status = status if status is not None else self.problem.get("status")
        self.type = self.problem.get("type", "")
        self.detail = self.problem.get("detail", "")
        # the JSON pointers of the request fields at fault, for a field error
        self.fields = [e.get("pointer") for e in self.problem.get("errors", []) if isinstance(e, dict)]
        text = self.problem.get("title") or "error"
        if self.detail:
            text = f"{text}: {self.detail}"
        if self.status:
            text = f"{self.status} {text}"
        super().__init__(text)


class TransportError(ParacorrError):
    """The daemon could not be reached, or answered something that is not HTTP/JSON."""


class JobFailed(ParacorrError):
    """The job ended failed or cancelled; ``job`` is its last state."""

    def __init__(self, job):
        self.job = job
        problem = job.get("error") or {"title": f"job {job.get('status')}", "detail": job.get("id", "")}
        super().__init__(problem, problem.get("status") if isinstance(problem, dict) else None)


# name in /problems/<name> -> class name; the daemon's error table
# (include/paracorr/error.h) is the source of these names
_NAMES = {
    "bad_request": "BadRequest",
    "unauthorized": "Unauthorized",
    "forbidden": "Forbidden",
    "not_found": "NotFound",
    "method_not_allowed": "MethodNotAllowed",
    "conflict": "Conflict",
    "lease_lost": "LeaseLost",
    "limit": "TooLarge",
    "media_type": "MediaType",
    "misdirected": "Misdirected",
    "format": "FormatError",
    "unsupported": "Unsupported",
    "shape": "ShapeError",
    "invalid": "Invalid",
    "too_much_work": "TooMuchWork",
    "quota": "QuotaExceeded",
    "busy": "Busy",
    "nomem": "OutOfMemory",
    "storage_quota": "StorageQuota",
    "nospace": "NoSpace",
    "io": "IOFailure",
    "internal": "Internal",
    "gave_up": "GaveUp",
    "cancelled": "Cancelled",
}

_BY_NAME = {}
for _name, _cls in _NAMES.items():
    _BY_NAME[_name] = type(_cls, (ParacorrError,), {"__doc__": f"The daemon's /problems/{_name}."})
    globals()[_cls] = _BY_NAME[_name]


def error_for(problem, status=None):
    """The typed error for a problem object (a dict)."""
    name = str((problem or {}).get("type", "")).rsplit("/", 1)[-1].replace("-", "_")
    return _BY_NAME.get(name, ParacorrError)(problem, status)


__all__ = ["ParacorrError", "TransportError", "JobFailed", "error_for"] + list(_NAMES.values())
