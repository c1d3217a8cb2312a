"""The soak's errors, set against the faults it injected.

An error is *in flight at a fault* when its request was running while the fault was being
injected (started before the fault was over, ended after it began): a client whose
connection was cut by a killed backend or a restarted Redis sees that error, and no server
can hide it. Only faults that can reach the interface count (``FAULT_REACHES``: a killed
worker breaks no HTTP request). Every other error is *unexpected*: the system should have
recovered by the time that request started, and the soak's table counts it apart.

Example:
    >>> faults = [Fault("restart redis", 60.0, 60.5)]
    >>> errors = [SoakError(59.8, 60.2, "RemoteDisconnected"), SoakError(70.0, 70.1, "500")]
    >>> [e.message for e in in_flight(errors, faults)], [e.message for e in unexpected(
    ...     errors, faults)]
    (['RemoteDisconnected'], ['500'])
"""

from __future__ import annotations

import time
from dataclasses import dataclass

# What each fault can break mid-request: the web and the SQL API keep their rate limits and
# result cache in Redis and their users in the registry; compute runs need all three.
FAULT_REACHES = {
    "kill worker": frozenset({"compute"}),
    "restart redis": frozenset({"http", "sql", "compute"}),
    "terminate registry backends": frozenset({"http", "sql", "compute"}),
}


@dataclass(frozen=True)
class Fault:
    """One injected fault: seconds since the soak began when it started and was over."""

    name: str
    started: float
    ended: float


@dataclass(frozen=True)
class SoakError:
    """One failed request: seconds since the soak began when it started and failed."""

    started: float
    ended: float
    message: str


def soak_error(exc: BaseException, started_perf: float, began_monotonic: float) -> SoakError:
    """The error a client saw, timed against the soak's start (``time.monotonic`` base)."""
    now = time.monotonic()
    elapsed = time.perf_counter() - started_perf
    ended = now - began_monotonic
    return SoakError(ended - elapsed, ended, f"{type(exc).__name__}: {exc}"[:300])


def fault_at(error: SoakError, faults: list[Fault]) -> Fault | None:
    """The fault the request was in flight at, if any."""
    for fault in faults:
        if error.started <= fault.ended and error.ended >= fault.started:
            return fault
    return None


def faults_reaching(kind: str, faults: list[Fault]) -> list[Fault]:
    """The faults that can break a request of ``kind`` (http, sql, compute)."""
    return [f for f in faults if kind in FAULT_REACHES.get(f.name, frozenset({kind}))]


def in_flight(errors: list[SoakError], faults: list[Fault]) -> list[SoakError]:
    return [e for e in errors if fault_at(e, faults) is not None]


def unexpected(errors: list[SoakError], faults: list[Fault]) -> list[SoakError]:
    return [e for e in errors if fault_at(e, faults) is None]
