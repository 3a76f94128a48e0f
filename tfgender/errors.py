"""The one rule that turns a TensorFlow error into the reason of a one-line message."""

from __future__ import annotations

import re

# Framing TensorFlow adds around an op's own words: graph node names, the Python frames of
# "Detected at node", "[[{{node x}}]]" and "[Op:DecodeJpeg]" tags, "{{function_node ...}}".
_HEADERS = ("Graph execution error", "Detected at node")
_TAGS = re.compile(r"\s*\[\[.*?\]\]|\s*\[Op:[^\]]*\](\s*name:.*)?|\{\{.*?\}\}\s*")


def reason(err: BaseException, limit: int = 200) -> str:
    """The first line of ``err``'s message that is the op's own words, without the framing.

    Args:
        err: A ``tf.errors.OpError`` (its ``message``) or any exception (its ``str``).
        limit: Longest reason returned, in characters.

    Returns:
        The reason, or the exception's type name when the message has none.
    """
    message = getattr(err, "message", None) or str(err)
    for line in message.splitlines():
        if not line.strip() or line.startswith((" ", "\t", *_HEADERS)):
            continue
        text = _TAGS.sub("", line).strip()
        if text:
            return text[:limit]
    return type(err).__name__
