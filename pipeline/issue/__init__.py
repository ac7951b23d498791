"""Reading an issue folder into the validated model: metadata, sections, items."""

from .edit import set_key
from .identity import IssueIds, derived_id, is_id, record_id
from .model import Image, Issue, Item, Link, Section
from .reader import (
    ISSUE_FILE,
    issue_folders,
    issue_ids,
    parse_send_at,
    read_issue,
    read_metadata,
    resolve_issue_path,
    welcome_folder,
)

__all__ = ["ISSUE_FILE", "Image", "Issue", "IssueIds", "Item", "Link", "Section", "derived_id",
           "is_id", "issue_folders", "issue_ids", "parse_send_at", "read_issue", "read_metadata",
           "record_id", "resolve_issue_path", "set_key", "welcome_folder"]
