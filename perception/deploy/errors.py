"""Errors of export and verification (bundle errors live with the bundle,
:class:`perception.deploy.manifest.BundleError`)."""
from __future__ import annotations

from perception.errors import UserError

__all__ = ['ExportError', 'PrecisionError']


class ExportError(UserError, ValueError):
    """The model cannot be exported as asked, or the exported graph failed
    a verification gate; the message names the stage, figure and report."""


class PrecisionError(UserError, ValueError):
    """An FP16/INT8 model failed its accuracy gate or the op lint, or its
    gate cannot be set up; the message gives the figures and names
    precision.json (re-exported by :mod:`perception.deploy.precision`)."""
