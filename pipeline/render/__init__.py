"""The model becomes what readers see: the email (MJML → HTML with inlined CSS, and
its plain-text part) once per issue, and the web archive's pages."""

from .mail import (
    CONFIRMATION,
    FIELDS,
    PLACEHOLDER,
    Asset,
    RenderedEmail,
    SizeVerdict,
    render_confirmation,
    render_issue,
    size_verdict,
    web_url,
)
from .templates import template_env

__all__ = ["CONFIRMATION", "FIELDS", "render_confirmation", "PLACEHOLDER", "Asset", "RenderedEmail", "SizeVerdict", "render_issue",
           "size_verdict", "template_env", "web_url"]
