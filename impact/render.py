"""Message templates: shipped files in ``impact/message_templates``, replaceable by the user's.

A user's template directory (``delivery.templates`` in the configuration, or ``CMDB_TEMPLATES``, or a
channel's ``template_dir``) is searched first, so dropping a ``task.txt.j2`` or ``jira.json.j2`` there
replaces the shipped one. Text templates start with a ``Subject:`` line; webhook templates render JSON
and are checked to parse, so a broken template fails at queueing time, naming the template.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from cmdb.errors import ConfigError

SHIPPED = Path(__file__).parent / "message_templates"
WEBHOOK_TEMPLATES = ("jira", "servicenow", "slack", "teams")


def template_dirs(*extra: str | None) -> list[str]:
    dirs = [d for d in extra if d]
    if os.environ.get("CMDB_TEMPLATES"):
        dirs.append(os.environ["CMDB_TEMPLATES"])
    return [*dirs, str(SHIPPED)]


@functools.lru_cache(maxsize=32)
def _env(dirs: tuple[str, ...]) -> jinja2.Environment:
    """One environment per search path: it compiles each template once (and again when the file changes)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(list(dirs)), autoescape=False,
                              keep_trailing_newline=True, trim_blocks=False)


def _render(name: str, context: Mapping[str, Any], dirs: Sequence[str]) -> str:
    path = Path(name)
    try:
        if path.is_absolute() or len(path.parts) > 1:
            template = _env((str(path.parent),)).get_template(path.name)
        else:
            template = _env(tuple(dirs)).get_template(name)
        return template.render(**context)
    except jinja2.TemplateNotFound:
        raise ConfigError(f"message template {name!r} not found in {', '.join(dirs)}") from None
    except jinja2.TemplateError as exc:
        raise ConfigError(f"message template {name!r}: {exc}") from None


def render_text(name: str, context: Mapping[str, Any], dirs: Sequence[str]) -> tuple[str, str]:
    """(subject, body) of a text template ``<name>.txt.j2`` whose first line is ``Subject: ...``."""
    text = _render(name if name.endswith(".j2") else f"{name}.txt.j2", context, dirs)
    first, _, rest = text.partition("\n")
    if not first.startswith("Subject:"):
        raise ConfigError(f"message template {name!r}: the first line must be 'Subject: ...'")
    return first.removeprefix("Subject:").strip(), rest.lstrip("\n")


def render_webhook(template: str, context: Mapping[str, Any], dirs: Sequence[str]) -> str:
    """The JSON body of a webhook from a shipped template name or a template file path."""
    name = f"{template}.json.j2" if template in WEBHOOK_TEMPLATES or ("/" not in template and "." not in template) \
        else template
    text = _render(name, context, dirs)
    try:
        json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"webhook template {template!r} did not render JSON: {exc}") from None
    return text
