"""Errors with messages meant for people: the CLI and UI show them as they are, no traceback."""

from __future__ import annotations


class RagError(Exception):
    """Base class: every expected failure of the library is one of these."""


class CorpusError(RagError):
    """The corpus folder or one of its files cannot be used (missing, empty, not UTF-8, ...)."""


class IndexCorruptError(RagError):
    """The index on disk is damaged or incomplete; ``rag index --rebuild`` recovers."""


class QueryError(RagError):
    """The question cannot be used as it is (empty, too long, ...)."""


class ModelNotInstalledError(RagError):
    """A model the chosen mode needs is not installed; the message names the install command."""
