"""Streamed readers for tabular files: CSV, JSON (an array of objects, or JSON Lines) and YAML.

Each reader yields ``(line, row)`` pairs, row being column -> value, and holds one row (CSV, JSON)
at a time, so memory stays flat however large the file. YAML is the exception: a YAML file is
composed as one node tree (YAML files are hand-written and small; use CSV or JSON Lines for bulk).
A file that cannot be read as its format is a ``BadInputError`` naming the file, the line and, for
a bad byte, its offset and the fix.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from cmdb.errors import BadInputError

Row = dict[str, Any]
CHUNK = 1 << 16


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if suffix in (".json",):
        return "json"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise BadInputError(f"{path}: unknown file type {suffix or '(none)'}; use .csv, .json, .jsonl, .yaml")


def read_rows(path: Path, *, delimiter: str = ",", quotechar: str = '"', encoding: str = "utf-8",
              header: Callable[[list[str]], str | None] | None = None) -> Iterator[tuple[int, Row]]:
    """The rows of ``path`` by its suffix; ``header`` checks the declared columns before any row."""
    kind = file_format(path)
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise BadInputError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        if kind == "csv":
            yield from _csv_rows(path, fh, delimiter, quotechar, encoding, header)
        elif kind == "jsonl":
            yield from _jsonl_rows(path, fh, encoding)
        elif kind == "json":
            yield from _json_rows(path, fh, encoding)
        else:
            yield from _yaml_rows(path, fh, encoding)


def _decode_error(path: Path, line: int, offset: int, exc: UnicodeDecodeError, encoding: str) -> BadInputError:
    bad = exc.object[exc.start:exc.start + 1].hex()
    return BadInputError(
        f"{path}:{line}: not valid {encoding} (byte 0x{bad} at offset {offset + exc.start}); save the file as "
        "UTF-8, or name its encoding in the mapping (csv: {encoding: latin-1})")


def _decoded_lines(path: Path, fh: IO[bytes], encoding: str) -> Iterator[str]:
    """Lines as text, a decoding error naming line and byte offset; a UTF-8 BOM is dropped."""
    offset = 0
    for number, raw in enumerate(fh, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf") and encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
            raw = raw[3:]
            offset = 3
        try:
            yield raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise _decode_error(path, number, offset, exc, encoding) from None
        offset += len(raw)


def _csv_rows(path: Path, fh: IO[bytes], delimiter: str, quotechar: str, encoding: str,
              header_check: Callable[[list[str]], str | None] | None) -> Iterator[tuple[int, Row]]:
    lines = _decoded_lines(path, fh, encoding)
    reader = csv.reader(lines, delimiter=delimiter, quotechar=quotechar, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise BadInputError(f"{path}: the file is empty; a CSV file starts with a header row of column names")
        header = [h.strip() for h in header]
        if len(header) == 1 and delimiter not in header[0]:
            for other in (";", "\t", "|", ","):
                if other != delimiter and other in header[0]:
                    shown = "\\t" if other == "\t" else other
                    raise BadInputError(
                        f"{path}:1: the header is one column {header[0]!r}; the file looks {shown!r}-delimited: "
                        f"set csv: {{delimiter: \"{shown}\"}} in the mapping")
        if any(not h for h in header):
            raise BadInputError(f"{path}:1: the header has an empty column name (column "
                                f"{next(i + 1 for i, h in enumerate(header) if not h)}); name every column")
        if header_check is not None:
            problem = header_check(header)
            if problem:
                raise BadInputError(f"{path}:1: {problem}")
        width = len(header)
        start = reader.line_num + 1
        for fields in reader:
            line = start
            start = reader.line_num + 1
            if not fields:
                continue
            if len(fields) != width:
                yield line, {"__error__": f"has {len(fields)} fields, the header has {width}"
                             + (" (a delimiter inside an unquoted value?)" if len(fields) > width else "")}
                continue
            yield line, dict(zip(header, fields, strict=True))
    except csv.Error as exc:
        raise BadInputError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from None


def _jsonl_rows(path: Path, fh: IO[bytes], encoding: str) -> Iterator[tuple[int, Row]]:
    for number, text in enumerate(_decoded_lines(path, fh, encoding), start=1):
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{path}:{number}: not valid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(item, dict):
            yield number, {"__error__": f"expected an object, got {type(item).__name__}"}
            continue
        yield number, item


def _json_rows(path: Path, fh: IO[bytes], encoding: str) -> Iterator[tuple[int, Row]]:
    """A top-level array of objects, decoded one element at a time (or ``{"rows": [...]}``: not streamed)."""
    decoder = json.JSONDecoder()
    buf = ""
    line = 1  # line of buf[0]
    lines = _decoded_lines(path, fh, encoding)
    eof = False

    def fill() -> bool:
        nonlocal buf, eof
        if eof:
            return False
        size = 0
        parts = [buf]
        for text in lines:
            parts.append(text)
            size += len(text)
            if size >= CHUNK:
                break
        else:
            eof = True
        buf = "".join(parts)
        return size > 0

    def skip_ws(pos: int) -> int:
        nonlocal buf, line
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf) or not fill():
                return pos

    def fail(pos: int, msg: str) -> BadInputError:
        return BadInputError(f"{path}:{line + buf.count(chr(10), 0, pos)}: not valid JSON: {msg}")

    fill()
    pos = skip_ws(0)
    if pos >= len(buf):
        raise BadInputError(f"{path}: the file is empty; expected a JSON array of objects")
    if buf[pos] != "[":
        raise fail(pos, "expected a top-level array of row objects (or use .jsonl, one object per line)")
    pos = skip_ws(pos + 1)
    first = True
    while True:
        if pos < len(buf) and buf[pos] == "]":
            return
        if not first:
            if pos >= len(buf) or buf[pos] != ",":
                raise fail(pos, "expected ',' or ']' between array elements")
            pos = skip_ws(pos + 1)
        first = False
        while True:
            try:
                item, end = decoder.raw_decode(buf, pos)
                if end >= len(buf) and not eof:  # a number could continue in the next chunk
                    raise json.JSONDecodeError("incomplete", buf, end)
                break
            except json.JSONDecodeError as exc:
                if not eof and fill():
                    continue
                raise fail(exc.pos, exc.msg) from None
        item_line = line + buf.count("\n", 0, pos)
        # Drop what is consumed, keeping the line count of the rest right.
        line += buf.count("\n", 0, end)
        buf = buf[end:]
        if isinstance(item, dict):
            yield item_line, item
        else:
            yield item_line, {"__error__": f"expected an object, got {type(item).__name__}"}
        pos = skip_ws(0)
        if pos >= len(buf):
            raise fail(pos, "the array is not closed with ']'")


def _yaml_rows(path: Path, fh: IO[bytes], encoding: str) -> Iterator[tuple[int, Row]]:
    try:
        text = fh.read().decode(encoding)
    except UnicodeDecodeError as exc:
        line = exc.object.count(b"\n", 0, exc.start) + 1
        raise _decode_error(path, line, 0, exc, encoding) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise BadInputError(f"{path}: the file is empty; expected a YAML list of rows")
        if isinstance(node, yaml.MappingNode):  # {rows: [...]}
            for key, value in node.value:
                if key.value == "rows":
                    node = value
                    break
        if not isinstance(node, yaml.SequenceNode):
            raise BadInputError(f"{path}:{node.start_mark.line + 1}: expected a list of rows (mappings)")
        for item in node.value:
            row = loader.construct_object(item, deep=True)
            if isinstance(row, dict):
                yield item.start_mark.line + 1, {str(k): v for k, v in row.items()}
            else:
                yield item.start_mark.line + 1, {"__error__": f"expected a mapping, got {type(row).__name__}"}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise BadInputError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()


def file_size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
