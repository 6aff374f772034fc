"""Errors of export and verification (bundle errors live with the bundle,
:class:`perception.deploy.manifest.BundleError`)."""
from __future__ import annotations

from perception.errors import UserError

__all__ = ['ExportError']


class ExportError(UserError, ValueError):
    """The model cannot be exported as asked, or the exported graph failed
    a verification gate; the message names the stage, figure and report."""
