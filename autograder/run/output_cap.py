"""The output cap: what the grader keeps of a notebook's outputs, counted while they stream in.

The kernel controls every byte it sends. One message is bounded by ZeroMQ (``MAX_MESSAGE_BYTES``, a bigger
one drops the connection, not the grader's memory), unread messages by ``QUEUED_MESSAGES`` per socket,
and what is kept of the cells' outputs by the budget of :class:`CappedNotebookClient`.
"""
from __future__ import annotations

import functools
import json
from typing import Any, Callable

import nbformat
from nbclient import NotebookClient

MAX_MESSAGE_BYTES = 16 * 2**20  # one kernel message; bigger ones drop the connection, not our memory
#: Messages received but not yet read, per socket: with MAX_MESSAGE_BYTES this bounds what a flooding kernel
#: can make the grader hold (ZeroMQ's default is 1000 messages; past the bound the kernel's side drops them).
QUEUED_MESSAGES = 4
TRUNCATION_NOTE = "\n[output truncated by the grader: this notebook printed more than {limit} MB]\n"
LOST_NOTE = "\n[output dropped by the grader: a single burst of output was larger than {limit} MB]\n"


def render_terminal(text: str) -> str:
    """What Jupyter shows for ``text``: ``\\r`` starts its line over, ``\\b`` deletes a character."""
    if "\r" not in text and "\b" not in text:
        return text
    lines = []
    for line in text.split("\n"):
        shown: list[str] = []
        for char in line:
            if char == "\r":
                shown.clear()
            elif char == "\b":
                if shown:
                    shown.pop()
            else:
                shown.append(char)
        lines.append("".join(shown))
    return "\n".join(lines)


def stored_size(content: dict[str, Any]) -> int:
    """Bytes a message's content takes once kept: every field counts, whatever nbclient keeps of it."""
    return len(json.dumps(content, default=str))


class OutputCapFault(RuntimeError):
    """The grader's own output capping failed: the run ends as the grader's error, not the kernel's."""


def own_code(method: Callable[..., Any]) -> Callable[..., Any]:
    """Any exception of the grader's own message handling is an :class:`OutputCapFault` (a message nested too
    deep to handle stays the kernel's: ``kernel_protocol``)."""
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except RecursionError:
            raise
        except Exception as exc:
            raise OutputCapFault(f"{method.__name__}: {type(exc).__name__}: {exc}") from exc
    return wrapper


class CappedNotebookClient(NotebookClient):
    """nbclient that stops storing outputs past a byte budget, while they stream in.

    Every field of a kept message counts against the budget (data, text and tracebacks, but also
    metadata, display ids and execution counts); a message over the budget is dropped whole. Display
    updates count once per output they rewrite. Widget (comm) messages are never kept: no widget
    frontend is mimicked.
    """

    DISPLAY_TYPES = ("display_data", "execute_result", "update_display_data")
    MAX_DISPLAY_ID = 200

    def __init__(self, nb: Any, max_output_bytes: int, **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.max_output_bytes = max_output_bytes
        self.output_bytes = 0
        self.truncated = False
        self.idle_seen = True

    def charge(self, size: int, outs: list) -> bool:
        """Count ``size`` more bytes kept; False (and a note, once) when that would pass the budget."""
        if self.output_bytes + size > self.max_output_bytes:
            if not self.truncated:
                self.truncated = True
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr", text=TRUNCATION_NOTE.format(limit=self.max_output_bytes / 2**20)))
            return False
        self.output_bytes += size
        return True

    def process_message(self, msg: dict, cell: Any, cell_index: int) -> Any:
        if not isinstance(msg.get("content"), dict):
            return super().process_message(msg, cell, cell_index)  # nbclient's to refuse: kernel_protocol
        if self.cap_message(msg, cell):
            return super().process_message(msg, cell, cell_index)
        return None

    @own_code
    def cap_message(self, msg: dict, cell: Any) -> bool:
        """False when the message is not kept (a comm message, or a display update over the budget)."""
        msg_type, content = msg["msg_type"], msg["content"]
        if msg_type == "status" and content.get("execution_state") == "idle":
            self.idle_seen = True
        if msg_type.startswith("comm"):
            return False
        if "execution_count" in content and type(content["execution_count"]) is not int:
            content["execution_count"] = None  # nbclient copies it into the cell; the schema wants a number
        transient = content.get("transient")
        display_id = transient.get("display_id") if isinstance(transient, dict) else None
        if display_id is not None and not (isinstance(display_id, str) and len(display_id) <= self.MAX_DISPLAY_ID):
            content["transient"] = {}  # an id the grader would have to keep: the output is kept without it
        elif display_id in self._display_id_map and msg_type in self.DISPLAY_TYPES:
            copies = sum(len(indices) for indices in self._display_id_map[display_id].values())
            return self.charge(stored_size(content) * copies, cell.outputs)
        return True

    async def async_execute_cell(self, cell: Any, cell_index: int, **kwargs: Any) -> Any:
        self.idle_seen = False
        return await super().async_execute_cell(cell, cell_index, **kwargs)

    def note_lost_output(self, cell: Any) -> None:
        """A message over MAX_MESSAGE_BYTES drops the output connection: the cell's idle never arrives."""
        if not self.idle_seen:
            self.truncated = True
            cell.outputs.append(nbformat.v4.new_output("stream", name="stderr", text=LOST_NOTE.format(
                limit=MAX_MESSAGE_BYTES // 2**20)))

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> Any:
        kept = self.cap_output(outs, msg)
        return super().output(outs, msg, display_id, cell_index) if kept is True else kept

    @own_code
    def cap_output(self, outs: list, msg: dict) -> Any:
        """True: nbclient stores the output; else what ``output`` returns (merged into the last, or None)."""
        content = msg["content"]
        if msg["msg_type"] == "stream" and outs and outs[-1].get("output_type") == "stream" \
                and outs[-1].get("name") == content.get("name") and isinstance(content.get("text"), str):
            # Progress bars redraw with \r and \b: keep what a terminal would show, not every frame.
            before = len(outs[-1].text)
            merged = render_terminal(outs[-1].text + content["text"])
            if self.output_bytes + len(merged) - before <= self.max_output_bytes:
                outs[-1].text = merged
                self.output_bytes += len(merged) - before
                return outs[-1]
        return True if self.charge(stored_size(content), outs) else None
