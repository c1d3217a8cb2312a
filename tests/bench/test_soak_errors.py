"""The soak's table tells errors that a fault caused (the request was in flight while a fault
that reaches its interface was injected) from unexpected ones (issue 23: the soak's errors
used to be one count, so a real bug hid among the expected ones)."""

from __future__ import annotations

from bench.soak_errors import Fault, SoakError, faults_reaching, in_flight, unexpected

FAULTS = [
    Fault("kill worker", 30.0, 30.4),
    Fault("restart redis", 60.0, 60.6),
    Fault("terminate registry backends", 90.0, 90.1),
]


def test_a_request_in_flight_while_a_reaching_fault_was_injected_is_expected() -> None:
    errors = [
        SoakError(59.9, 60.2, "500 as Redis went away"),  # started before, failed during
        SoakError(60.3, 60.5, "500 while Redis was restarting"),  # started during
        SoakError(89.0, 90.05, "backend terminated under the request"),
    ]
    assert in_flight(errors, faults_reaching("http", FAULTS)) == errors
    assert unexpected(errors, faults_reaching("http", FAULTS)) == []


def test_an_error_after_the_fault_was_over_is_unexpected() -> None:
    late = SoakError(61.0, 61.2, "500 a second after Redis was back")
    assert unexpected([late], faults_reaching("http", FAULTS)) == [late]


def test_a_fault_that_cannot_reach_the_interface_explains_nothing() -> None:
    """The soak's first SQL connections timed out over 30 s spanning the worker kill: that
    kill does not reach the SQL API, so they are unexpected (the real bug: the server
    announced its port before it could answer)."""
    timeout = SoakError(0.0, 30.0, "ConnectionTimeout: connection timeout expired")
    assert unexpected([timeout], faults_reaching("sql", FAULTS)) == [timeout]
    assert in_flight([timeout], faults_reaching("compute", FAULTS)) == [timeout]
