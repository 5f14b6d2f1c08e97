"""What each role may do. Seeded into ``control.casbin_rule`` so operators can extend it in SQL.

Resources are namespaced ``agiflow:<thing>``; actions are ``read`` and ``write``. Members and keys
are owner-only to write because either one hands out access; model connections are owner-only to write
because they hold the project's provider credentials (editors and viewers may use and list them).
"""

from __future__ import annotations

READ, WRITE = "read", "write"

ROLE_PERMISSIONS: list[tuple[str, str, str, str]] = [
    ("owner", "*", "agiflow:*", "*"),
    *[
        ("editor", "*", resource, action)
        for resource in (
            "agiflow:prompts",
            "agiflow:datasets",
            "agiflow:jobs",
            "agiflow:evals",
            "agiflow:traces",
        )
        for action in (READ, WRITE)
    ],
    *[
        ("editor", "*", resource, READ)
        for resource in ("agiflow:project", "agiflow:members", "agiflow:audit", "agiflow:models")
    ],
    *[
        ("viewer", "*", resource, READ)
        for resource in (
            "agiflow:prompts",
            "agiflow:datasets",
            "agiflow:jobs",
            "agiflow:evals",
            "agiflow:traces",
            "agiflow:models",
            "agiflow:project",
            "agiflow:members",
        )
    ],
]
