"""The few HTML pages the authorization server shows a browser: plain forms and links, no scripts, no
external resources, every value escaped."""

from __future__ import annotations

from html import escape

STYLE = ("body{font-family:sans-serif;max-width:40em;margin:3em auto;padding:0 1em}"
         "a.choice,button{display:block;margin:.5em 0;padding:.6em 1em;border:1px solid #888;border-radius:4px;"
         "text-decoration:none;background:#f4f4f4;color:#000;font-size:1em;text-align:left;width:100%}")


def page(title: str, message: str, body: str = "", identifier: str = "") -> str:
    """A whole page: a title, a message (text) and an optional body (HTML made by this module)."""
    ident = f' id="{escape(identifier)}"' if identifier else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>DIRAC - {escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
            f'<body><h1>{escape(title)}</h1><p{ident}>{escape(message)}</p>{body}</body></html>')


def userCodeForm(action: str) -> str:
    """Where a user types the code their terminal shows."""
    form = (f'<form method="get" action="{escape(action)}" id="user_code_form">'
            '<label>Code: <input type="text" name="user_code" autocomplete="off" autofocus></label>'
            '<button type="submit">Continue</button></form>')
    return page("Device login", "Type the code your terminal shows.", form)


def choices(title: str, message: str, links: list[tuple[str, str]], identifier: str) -> str:
    """A page of links, one per choice (identity providers, groups)."""
    body = "".join(f'<a class="choice" href="{escape(url)}">{escape(label)}</a>' for label, url in links)
    return page(title, message, f'<nav id="{escape(identifier)}">{body}</nav>')
