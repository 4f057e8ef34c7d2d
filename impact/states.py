"""Impact states, ordered by severity, so propagation is a monotone ``max`` that always terminates."""

from __future__ import annotations

from enum import IntEnum


class State(IntEnum):
    """How badly a CI is hit. Ordered: a CI's state only ever rises while impact propagates."""

    OK = 0
    AT_RISK = 1  # a change (or a risky input) touches it; nothing is broken yet
    DEGRADED = 2  # works with reduced capacity or redundancy
    DOWN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> State:
        """``down``, ``degraded``, ``at_risk`` (or ``at-risk``) -> State; raises ValueError otherwise."""
        key = text.strip().lower().replace("-", "_")
        for s in cls:
            if s.label == key and s is not cls.OK:
                return s
        raise ValueError(f"unknown failure mode {text!r}; use down, degraded or at_risk")
