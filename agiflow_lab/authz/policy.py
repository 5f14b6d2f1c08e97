"""What each role may do. Seeded into ``control.casbin_rule`` so operators can extend it in SQL.

Resources are namespaced ``agiflow:<thing>``; actions are ``read`` and ``write``, and ``execute`` for
calling a model connection outside a run (``models/{name}/test``). Members and keys are owner-only to
write because either one hands out access; model connections are owner-only to write because they hold
the project's provider credentials (editors and viewers may list them; editors may call them, as their
runs do anyway, viewers may not: a call spends the project's key and reaches whatever host it names).
"""

from __future__ import annotations

READ, WRITE, EXECUTE = "read", "write", "execute"

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
            "agiflow:schedules",
            "agiflow:alerts",
            "agiflow:notifications",
        )
        for action in (READ, WRITE)
    ],
    *[
        ("editor", "*", resource, READ)
        for resource in ("agiflow:project", "agiflow:members", "agiflow:audit", "agiflow:models")
    ],
    ("editor", "*", "agiflow:models", EXECUTE),
    *[
        ("viewer", "*", resource, READ)
        for resource in (
            "agiflow:prompts",
            "agiflow:datasets",
            "agiflow:jobs",
            "agiflow:evals",
            "agiflow:traces",
            "agiflow:schedules",
            "agiflow:alerts",
            "agiflow:notifications",
            "agiflow:models",
            "agiflow:project",
            "agiflow:members",
        )
    ],
]
