"""The app's HTTP routes by path: their templates and methods.

FastAPI (0.16x) wraps each included router in one opaque route, so neither
`app.routes` nor Starlette's router can say which methods a path serves, nor
which template a path that was refused before routing (a 413) belongs to.
The table is built once from the routes themselves (public attributes only).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.routing import BaseRoute, Route


@dataclass(frozen=True, slots=True)
class _Entry:
    regex: re.Pattern[str]
    template: str
    methods: frozenset[str]


class RouteTable:
    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._entries = [
            _Entry(r.path_regex, r.path, frozenset(r.methods or ()))
            for r in routes
            if isinstance(r, Route)
        ]

    def methods(self, path: str) -> frozenset[str]:
        """Every method some route serves on `path` (HEAD wherever GET is)."""
        found: set[str] = set()
        for e in self._entries:
            if e.regex.match(path):
                found |= e.methods
        return frozenset(found)

    def template(self, path: str) -> str | None:
        """The template of the first route whose path matches, whatever its method."""
        return next((e.template for e in self._entries if e.regex.match(path)), None)
