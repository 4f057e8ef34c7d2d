"""Values every store can keep, checked once in ``ingest`` so that SQLite and Neo4j accept and refuse
the same batches.

A batch's header strings (source, scope, actor, run id) name runs, sightings and history; the Neo4j
store packs source and scope into one string separated by U+001F, so a control character there was
refused by Neo4j and stored by SQLite. Control characters (Unicode category Cc: U+0000-U+001F,
U+007F-U+009F, tabs and line breaks included) and lone UTF-16 surrogates are refused for both.
"""

from __future__ import annotations

import re

from cmdb.batch import Batch
from cmdb.errors import BadInputError

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def refuse_control_characters(batch: Batch) -> None:
    """A BadInputError naming the header field and the character's position."""
    for name in ("source", "scope", "actor", "run_id"):
        value = getattr(batch, name)
        if not isinstance(value, str):
            continue
        found = _UNPRINTABLE.search(value)
        if found is not None:
            raise BadInputError(
                f"{batch.origin}: '{name}' {value!r:.80} holds the control character U+{ord(found.group()):04X} at "
                f"position {found.start()}; use printable text; nothing of this batch was written")
