"""Attach evidence to both the Allure results and the pytest-html report.

Framework code deep below the tests (a traffic generator, a testpmd shell, a session
fixture) has no `request` object, so the pytest-html side cannot use pytest-html's
`extras` fixture. Instead the report plugin binds the running test item to a context
variable for the whole runtest protocol (setup, call, teardown); the helpers here queue
pytest-html extras on that item and the plugin moves them onto the phase's report.
Outside a test (no item bound) only the Allure side is attempted.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import csv
import dataclasses
import html
import io
import json
import logging
import mimetypes
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import allure
import pytest
from pytest_html import extras as html_extras

T = TypeVar("T")

log = logging.getLogger(__name__)

# The step logger gets an explicit INFO level: the root logger sits at WARNING, and
# the step titles are meant to show in pytest-html's captured log of every test.
step_log = logging.getLogger("howto.step")
step_log.setLevel(logging.INFO)

# Self-contained HTML inlines every extra as base64; a multi-megabyte capture or log
# would make the report unusable in a browser, while Allure stores attachments as files.
MAX_HTML_INLINE_BYTES = 512 * 1024

_current_item: contextvars.ContextVar[pytest.Item | None] = contextvars.ContextVar(
    "howto_report_current_item", default=None
)
# Threads started by a test (a traffic sender, a console reader) begin with an empty
# context, so the protocol-wide item is also kept here; pytest runs one test at a time
# per process, which makes a single slot sufficient.
_active_item: pytest.Item | None = None
_step_depth: contextvars.ContextVar[int] = contextvars.ContextVar("howto_step_depth", default=0)
_PENDING_KEY = pytest.StashKey[list[dict[str, Any]]]()

_TEXT_LIKE_MIMES = {
    "application/json",
    "application/xml",
    "application/x-yaml",
    "application/yaml",
    "image/svg+xml",
}


def bind_item(item: pytest.Item) -> contextvars.Token[pytest.Item | None]:
    """Make `item` the target of pytest-html extras (called by the report plugin)."""
    global _active_item
    _active_item = item
    return _current_item.set(item)


def unbind_item(token: contextvars.Token[pytest.Item | None]) -> None:
    """Undo bind_item once the item's protocol ends: extras go nowhere until the next."""
    global _active_item
    _active_item = None
    _current_item.reset(token)


def current_item() -> pytest.Item | None:
    """The test item whose protocol is running, or None outside a test."""
    return _current_item.get() or _active_item


def record_rows(key: str, rows: Iterable[Any]) -> None:
    """Keep dataclass `rows` on the running test as user properties `key`, for the summary."""
    item = current_item()
    if item is not None:
        item.user_properties += [(key, json.dumps(dataclasses.asdict(r))) for r in rows]


def recorded_rows(properties: Sequence[tuple[str, object]], key: str, kind: type[T]) -> list[T]:
    """The `kind` rows a test recorded under `key` (record_rows), in order, each once."""
    found: dict[T, None] = {}
    for name, value in properties:
        if name == key:
            found[kind(**json.loads(str(value)))] = None
    return list(found)


def take_pending_extras(item: pytest.Item) -> list[dict[str, Any]]:
    """Remove and return the extras queued on `item` since the last report phase."""
    pending = item.stash.get(_PENDING_KEY, [])
    item.stash[_PENDING_KEY] = []
    return pending


def _queue_html(extra: dict[str, Any]) -> None:
    item = current_item()
    if item is None:
        log.debug("no running test: %r not added to the pytest-html report", extra.get("name"))
        return
    item.stash.setdefault(_PENDING_KEY, []).append(extra)


def _fit_for_html(text: str) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= MAX_HTML_INLINE_BYTES:
        return text
    half = MAX_HTML_INLINE_BYTES // 2
    head = data[:half].decode("utf-8", "ignore")
    tail = data[-half:].decode("utf-8", "ignore")
    return (
        f"{head}\n\n[... {len(data) - 2 * half} bytes cut here; the Allure attachment "
        f"holds the full text ...]\n\n{tail}"
    )


def _extension_for(mime: str, path: Path | None = None) -> str:
    if path is not None and path.suffix:
        return path.suffix.lstrip(".")
    guessed = mimetypes.guess_extension(mime) or ".txt"
    return guessed.lstrip(".")


def _is_text_mime(mime: str) -> bool:
    return mime.startswith("text/") or mime in _TEXT_LIKE_MIMES or mime.endswith("+json")


def attach_text(name: str, text: str, mime: str = "text/plain") -> None:
    """Attach a text blob (a testpmd transcript, a config file, a log excerpt)."""
    ext = _extension_for(mime)
    allure.attach(text, name=name, attachment_type=mime, extension=ext)
    _queue_html(html_extras.extra(_fit_for_html(text), html_extras.FORMAT_TEXT, name, mime, ext))


def attach_file(name: str, path: str | Path, mime: str | None = None) -> None:
    """Attach a file from disk; images show inline in pytest-html, text opens as a link.

    Binary files other than images (pcaps, core files) are only stored by Allure; the
    pytest-html report gets a short note naming them, since browsers refuse to open
    inline binary data links.
    """
    path = Path(path)
    mime = mime or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    ext = _extension_for(mime, path)
    allure.attach.file(str(path), name=name, attachment_type=mime, extension=ext)
    data = path.read_bytes()
    if mime.startswith("image/") and mime != "image/svg+xml":
        if len(data) <= MAX_HTML_INLINE_BYTES * 4:
            _queue_html(html_extras.image(base64.b64encode(data).decode("ascii"), name, mime, ext))
            return
    elif _is_text_mime(mime):
        text = data.decode("utf-8", "replace")
        _queue_html(
            html_extras.extra(_fit_for_html(text), html_extras.FORMAT_TEXT, name, mime, ext)
        )
        return
    note = f"{path} ({len(data)} bytes, {mime}) is attached to the Allure report only."
    _queue_html(html_extras.text(note, name))


def attach_image(name: str, png_path: str | Path) -> None:
    """Attach a PNG (a plot of throughput or of a migration gap)."""
    attach_file(name, png_path, "image/png")


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def table_html(headers: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as a small standalone HTML table (styled inline: no external CSS)."""
    style = "border:1px solid #999;padding:2px 8px;text-align:left"
    head = "".join(f'<th style="{style}">{html.escape(_cell(h))}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td style="{style}">{html.escape(_cell(c))}</td>' for c in row) + "</tr>"
        for row in rows
    )
    return (
        '<table style="border-collapse:collapse;font-family:monospace;margin:4px 0">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def table_csv(headers: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as CSV text with a header line (None cells are empty)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([_cell(h) for h in headers])
    writer.writerows([[_cell(c) for c in row] for row in rows])
    return buf.getvalue()


def attach_table(name: str, headers: Sequence[object], rows: Sequence[Sequence[object]]) -> None:
    """Attach a results table (e.g. the guide's PVP results template) as HTML and CSV."""
    rendered = table_html(headers, rows)
    as_csv = table_csv(headers, rows)
    allure.attach(rendered, name=name, attachment_type=allure.attachment_type.HTML)
    allure.attach(as_csv, name=f"{name} (CSV)", attachment_type=allure.attachment_type.CSV)
    caption = f"<p><b>{html.escape(name)}</b></p>"
    _queue_html(html_extras.html(f"<div>{caption}{rendered}</div>"))
    _queue_html(
        html_extras.extra(as_csv, html_extras.FORMAT_TEXT, f"{name} (CSV)", "text/csv", "csv")
    )


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    """An Allure step that also logs its title, so pytest-html logs show the guide steps.

    Usable as a context manager or a decorator; nesting is shown by indentation.
    """
    depth = _step_depth.get()
    indent = "  " * depth
    step_log.info("%sSTEP %s", indent, title)
    token = _step_depth.set(depth + 1)
    try:
        with allure.step(title):
            yield
    except BaseException as exc:
        step_log.info("%sSTEP FAILED %s: %s", indent, title, type(exc).__name__)
        raise
    finally:
        _step_depth.reset(token)
