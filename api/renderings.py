"""Markdown and HTML renderings of impact answers (JSON is the answer itself).

The change report has its own in ``impact.change``; incidents, SPOFs and expiry are rendered here
from their JSON form, so every format says the same thing.
"""

from __future__ import annotations

import html
from typing import Any

from impact.change import hidden_note

FORMATS = {"json": "application/json", "markdown": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8"}


def negotiate(fmt: str | None, accept: str | None) -> str:
    """``format=`` wins; otherwise the first of markdown/html the Accept header names; else json."""
    if fmt:
        return fmt
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip().lower()
        if media == "text/markdown":
            return "markdown"
        if media == "text/html":
            return "html"
    return "json"


def _md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    cell = [str(h) for h in header]
    lines = ["| " + " | ".join(cell) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return lines


def _html_table(header: list[str], rows: list[list[Any]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _page(title: str, parts: list[str], d: dict[str, Any] | None = None) -> str:
    e = html.escape
    note = hidden_note(d or {})
    tail = f"<p><em>{e(note)}</em></p>" if note else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title></head><body>"
            f"<h1>{e(title)}</h1>{''.join(parts)}{tail}</body></html>\n")


def _md_end(lines: list[str], d: dict[str, Any]) -> str:
    """The Markdown text, with the note of what a partition-limited token does not see."""
    note = hidden_note(d)
    return "\n".join(lines + (["", f"_{note}_"] if note else [])) + "\n"


def incident_markdown(d: dict[str, Any]) -> str:
    p = d["priority"]
    causes = ", ".join(c["name"] for c in d["causes"])
    lines = [f"# Incident impact: {causes} {d['mode']}", "",
             f"- Priority: **{p['priority']}** (impact {p['impact']}, urgency {p['urgency']}: {p['reason']})",
             f"- CIs affected: {len(d['affected'])}; services: {len(d['services'])}", "", "## Affected services", ""]
    lines += _md_table(["tier", "service", "state", "why"],
                       [[s["tier"], s["name"], s["state"], " → ".join(s["path"])] for s in d["services"]])
    lines += ["", "## Stakeholders", ""]
    lines += _md_table(["who", "roles", "contact"], [[s["name"], ", ".join(s["roles"]),
                                                      " ".join(s["contact"].values())] for s in d["stakeholders"]])
    return _md_end(lines, d)


def incident_html(d: dict[str, Any]) -> str:
    p = d["priority"]
    e = html.escape
    title = f"Incident impact: {', '.join(c['name'] for c in d['causes'])} {d['mode']}"
    return _page(title, [
        f"<p>Priority <strong>{e(p['priority'])}</strong> (impact {e(str(p['impact']))}, urgency "
        f"{e(str(p['urgency']))}: {e(p['reason'])}); {len(d['affected'])} CIs affected.</p>",
        "<h2>Affected services</h2>",
        _html_table(["tier", "service", "state", "why"],
                    [[s["tier"], s["name"], s["state"], " → ".join(s["path"])] for s in d["services"]]),
        "<h2>Stakeholders</h2>",
        _html_table(["who", "roles", "contact"], [[s["name"], ", ".join(s["roles"]), " ".join(s["contact"].values())]
                                                  for s in d["stakeholders"]])], d)


def spof_rows(items: list[dict[str, Any]]) -> list[list[Any]]:
    return [[s["name"], s["class"], ", ".join(f"{x['name']} (tier {x['tier']})" for x in s["services"]),
             " → ".join(s["services"][0]["path"]) if s["services"] else ""] for s in items]


def spof_markdown(d: dict[str, Any]) -> str:
    """``d``: the SPOF answer (``tier``, ``items`` and, for a limited token, ``hidden``)."""
    lines = [f"# Single points of failure for tier <= {d['tier']} services", ""]
    lines += _md_table(["CI", "class", "takes down", "why (first service)"], spof_rows(d["items"]))
    return _md_end(lines, d)


def spof_html(d: dict[str, Any]) -> str:
    return _page(f"Single points of failure for tier <= {d['tier']} services",
                 [_html_table(["CI", "class", "takes down", "why (first service)"], spof_rows(d["items"]))], d)


def expiry_markdown(d: dict[str, Any]) -> str:
    lines = [f"# What lapses by {d['at'][:10]} + {d['within_days']} days", ""]
    lines += _md_table(["expires", "class", "CI"], [[i["expires"][:10], i["class"], i["name"]] for i in d["expiring"]])
    lines += ["", "## Services hit", ""]
    lines += _md_table(["tier", "service", "state", "why"],
                       [[s["tier"], s["name"], s["state"], " → ".join(s["path"])] for s in d["services"]])
    return _md_end(lines, d)


def expiry_html(d: dict[str, Any]) -> str:
    return _page(f"What lapses by {d['at'][:10]} + {d['within_days']} days", [
        _html_table(["expires", "class", "CI"], [[i["expires"][:10], i["class"], i["name"]] for i in d["expiring"]]),
        "<h2>Services hit</h2>",
        _html_table(["tier", "service", "state", "why"],
                    [[s["tier"], s["name"], s["state"], " → ".join(s["path"])] for s in d["services"]])], d)
