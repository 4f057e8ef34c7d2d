"""The wings' sections of the configuration file, registered with the core (``cmdb.config``) here, where
the product is assembled, so ``cmdb config check`` validates every section while ``cmdb/`` imports no wing."""

from __future__ import annotations

from typing import Any

from cmdb.config import register_sections
from cmdb.retention import validate_retention
from impact.automation_config import SECTIONS, validate_sections
from impact.priority import PrioritySettings


def _priority(raw: Any) -> PrioritySettings:
    return PrioritySettings.model_validate(raw or {})


def register() -> None:
    """tasks, channels, delivery, scheduler (validated together: tasks name channels), priority, retention."""
    register_sections(SECTIONS, validate_sections, "impact.automation_config")
    register_sections(("priority",), _priority, "impact.priority")
    register_sections(("retention",), validate_retention, "cmdb.retention")  # the core's, with the store layer
