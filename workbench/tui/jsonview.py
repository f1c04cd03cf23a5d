"""Foldable, highlighted JSON as a Tree whose nodes carry JSON Pointers.

Keys and values are shown through :func:`workbench.safetext.shown`, so a
control character or bidi override in a payload is a visible escape.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from rich.highlighter import ReprHighlighter
from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from ..safetext import shown

__all__ = ["JsonTree", "pointer_join", "resolve_pointer"]

_highlight = ReprHighlighter()
_MAX_CHILDREN = 500


def pointer_join(base: str, key: str | int) -> str:
    """Append one reference token to a JSON Pointer (RFC 6901 escaping)."""
    token = str(key).replace("~", "~0").replace("/", "~1")
    return f"{base}/{token}"


def resolve_pointer(document: Any, pointer: str) -> tuple[bool, Any]:
    """(found, value) of ``pointer`` in ``document``."""
    if pointer == "":
        return True, document
    current = document
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list) and token.isdigit() and int(token) < len(current):
            current = current[int(token)]
        else:
            return False, None
    return True, current


def scalar_text(value: Any) -> Text:
    """A JSON scalar as highlighted text (strings quoted, null as null)."""
    return _highlight(Text(shown(json.dumps(value, ensure_ascii=False))))


class JsonTree(Tree[str]):
    """A JSON document as a foldable tree.

    Each node's ``data`` is its JSON Pointer, prefixed by the section name when
    several documents are shown (``data/total``). Paths in ``marked`` are drawn
    in the accent colour with a ``●`` so changed fields stand out.
    """

    DEFAULT_CSS = """
    JsonTree { background: $surface; }
    """

    def __init__(self, label: str = "", **kwargs: Any) -> None:
        super().__init__(label, **kwargs)
        self.show_root = False
        self.guide_depth = 2

    def show_documents(
        self,
        documents: Mapping[str, Any],
        *,
        marked: Collection[str] = (),
        expand_depth: int = 3,
    ) -> None:
        """Replace the tree with one top-level node per document."""
        self.clear()
        single = len(documents) == 1
        for name, document in documents.items():
            prefix = "" if single else name
            if single:
                self._add_json(self.root, document, prefix, marked, expand_depth, 1)
            else:
                node = self.root.add(
                    Text(shown(name), style="bold"), data=prefix, expand=True, allow_expand=True
                )
                self._add_json(node, document, prefix, marked, expand_depth, 1)
        self.root.expand()

    def _add_json(
        self,
        node: TreeNode[str],
        value: Any,
        path: str,
        marked: Collection[str],
        expand_depth: int,
        depth: int,
    ) -> None:
        if isinstance(value, dict):
            items: list[tuple[str | int, Any]] = list(value.items())
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            node.add_leaf(scalar_text(value), data=path)
            return
        if not items:
            node.add_leaf(Text("{}" if isinstance(value, dict) else "[]", style="dim"), data=path)
            return
        for key, child in items[:_MAX_CHILDREN]:
            child_path = pointer_join(path, key)
            is_marked = any(
                mark == child_path or mark.startswith(child_path + "/") for mark in marked
            )
            label = Text()
            label.append("● " if is_marked else "", style="bold yellow" if is_marked else "")
            key_style = "bold yellow" if is_marked else "bold"
            label.append(f"[{key}]" if isinstance(key, int) else shown(key), style=key_style)
            if isinstance(child, (dict, list)):
                size = len(child)
                label.append(f" {'{…}' if isinstance(child, dict) else '[…]'} ", style="dim")
                label.append(f"{size}", style="dim")
                branch = node.add(label, data=child_path, expand=depth < expand_depth or is_marked)
                self._add_json(branch, child, child_path, marked, expand_depth, depth + 1)
            else:
                label.append(": ")
                label.append_text(scalar_text(child))
                node.add_leaf(label, data=child_path)
        if len(items) > _MAX_CHILDREN:
            node.add_leaf(Text(f"… {len(items) - _MAX_CHILDREN} more", style="dim"), data=path)
