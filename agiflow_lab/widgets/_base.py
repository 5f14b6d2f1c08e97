"""What every AGIFlow widget shares: typed synced state, typed messages, actions off the kernel's main thread.

A widget's front end (``static/<widget>.js``) changes plain inputs through synced traits (``model.set``) and
asks for everything that calls the API with a message (``model.send({type: ...})``). Messages are TypedDicts,
one per action, validated here with pydantic before anything runs; a message that does not fit is shown as
the widget's ``error``, never run. Actions run one at a time on the widget's own thread, so a slow call
(a model's "try it") never blocks the kernel: the notebook stays usable while the widget works.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar, cast

import anywidget
import traitlets as t
from pydantic import TypeAdapter, ValidationError

from agiflow_lab.errors import AgiflowError

STATIC = Path(__file__).with_name("static")
T = TypeVar("T")
M = TypeVar("M")


def rows(kind: type[T]) -> t.List[T]:
    """A synced list of ``kind`` records (a TypedDict: the exact shape the front end reads)."""
    return cast("t.List[T]", t.List(t.Dict()).tag(sync=True))


def record(kind: type[T]) -> t.TraitType[T | None, T | None]:
    """A synced ``kind`` record (a TypedDict), or None."""
    return cast("t.TraitType[T | None, T | None]", t.Dict(allow_none=True, default_value=None).tag(sync=True))


class Widget(anywidget.AnyWidget, Generic[M]):  # type: ignore[misc]
    """Base of the AGIFlow widgets. ``M`` is the union of the widget's message TypedDicts."""

    _css = STATIC / "widgets.css"
    messages: ClassVar[TypeAdapter[Any]]

    busy = t.Unicode("").tag(sync=True)  # the action running ("" when idle): the front end disables its buttons
    error = t.Unicode("").tag(sync=True)  # the last action's failure, as the API said it
    notice = t.Unicode("").tag(sync=True)  # the last action's outcome, in words ("Saved v3")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._actions = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"agiflow-{type(self).__name__}")
        self._closed = threading.Event()
        self.on_msg(self._received)

    def _received(self, _widget: object, content: Any, _buffers: object) -> None:
        self.handle(content)

    def handle(self, message: Mapping[str, Any]) -> Future[None]:
        """Validate one front-end message and run its action on the widget's thread; the future ends with it.

        (The front end's ``model.send(message)`` arrives here; tests call it directly.)"""
        try:
            typed: M = self.messages.validate_python(message)
        except ValidationError as exc:
            self.error = f"unexpected message from the front end: {_first_error(exc)}"
            done: Future[None] = Future()
            done.set_result(None)
            return done
        return self.submit(str(message["type"]), lambda: self.dispatch(typed))

    def submit(self, name: str, action: Callable[[], None]) -> Future[None]:
        """Run ``action`` on the widget's thread with ``busy`` set to ``name``; an API error becomes ``error``."""
        return self._actions.submit(self._guarded, name, action)

    def _guarded(self, name: str, action: Callable[[], None]) -> None:
        self.error = ""
        self.notice = ""
        self.busy = name
        try:
            action()
        except AgiflowError as exc:
            self.error = str(exc)
        except Exception as exc:  # shown in the widget: a kernel thread has nowhere else to say it
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.busy = ""

    def dispatch(self, message: M) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._closed.set()
        self._actions.shutdown(wait=False, cancel_futures=True)
        super().close()


def messages_of(*kinds: Any) -> TypeAdapter[Any]:
    """The validator of a widget's messages: a union of TypedDicts told apart by their ``type``."""
    from typing import Annotated, Union

    from pydantic import Field

    union = Union[kinds]  # type: ignore[valid-type]  # noqa: UP007
    return TypeAdapter(Annotated[union, Field(discriminator="type")])


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "message"
    return f"{where}: {error['msg']}"
