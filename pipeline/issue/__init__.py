"""Reading an issue folder into the validated model: metadata, sections, items."""

from .edit import set_key
from .model import Image, Issue, Item, Link, Section
from .reader import (
    ISSUE_FILE,
    issue_folders,
    parse_send_at,
    read_issue,
    read_metadata,
    resolve_issue_path,
)

__all__ = ["ISSUE_FILE", "Image", "Issue", "Item", "Link", "Section", "issue_folders",
           "parse_send_at", "read_issue", "read_metadata", "resolve_issue_path", "set_key"]
