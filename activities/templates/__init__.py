"""Email templates: a template is three files in this folder, ``<name>.subject``, ``<name>.txt`` and
``<name>.html``, filled with ``string.Template`` placeholders (``${student_first_name}``). Adding an email is
adding those files. Every message is wrapped in the school's layout (``_layout.txt`` / ``_layout.html``).
Values are HTML-escaped in the HTML part; a missing placeholder is an error, never a silently blank email.

A fragment is one sentence a workflow chooses among several (``_<fragment>.txt``, plain text, filled with the same
context): ``render(name, context, {"next_step": "dunning_next_step_retry"})`` fills ``${next_step}`` with it, so the
words stay here and the workflow only names the case.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

TEMPLATE_DIR = Path(__file__).resolve().parent


class TemplateError(Exception):
    """A template that does not exist or needs a value the context lacks: a bug, not a transient failure."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@cache
def _load(file_name: str) -> Template:
    path = TEMPLATE_DIR / file_name
    if not path.is_file():
        raise TemplateError(f"no template file {file_name}")
    return Template(path.read_text(encoding="utf-8"))


def _fill(file_name: str, values: dict[str, str]) -> str:
    try:
        return _load(file_name).substitute(values)
    except (KeyError, ValueError) as exc:
        raise TemplateError(f"template {file_name} needs {exc}") from exc


def available_templates() -> set[str]:
    return {p.stem for p in TEMPLATE_DIR.glob("*.subject")}


def render(name: str, context: dict[str, Any], fragments: dict[str, str] | None = None) -> RenderedEmail:
    """The subject, text and HTML of template ``name`` with ``context`` (values are turned into text); each key of
    ``fragments`` gets the named fragment filled with the context."""
    plain = {key: "" if value is None else str(value) for key, value in context.items()}
    for key, fragment in (fragments or {}).items():
        plain[key] = _fill(f"_{fragment}.txt", plain).strip()
    escaped = {key: html.escape(value) for key, value in plain.items()}
    subject = " ".join(_fill(f"{name}.subject", plain).split())
    text_body = _fill(f"{name}.txt", plain)
    html_body = _fill(f"{name}.html", escaped)
    return RenderedEmail(
        subject=subject,
        text=_fill("_layout.txt", {**plain, "subject": subject, "body": text_body}),
        html=_fill("_layout.html", {**escaped, "subject": html.escape(subject), "body": html_body}),
    )
