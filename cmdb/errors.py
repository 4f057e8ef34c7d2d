"""The error tree of the CMDB. Library exceptions are translated into these at the boundary.

    CmdbError                  anything the CMDB reports to a user; the message names the item and the fix
    ├── SchemaError            a schema (core or extension file) is malformed
    ├── BadInputError          a batch, file or argument is invalid; nothing of it was written
    │   └── UnknownClassError  a CI class or relationship type the schema does not define
    ├── NotFoundError          a CI, relationship or run asked for does not exist
    ├── ConfigError            a configuration file, store URL or secret reference is unusable
    └── StoreError             the store failed (I/O, server unreachable); the batch was rolled back
        ├── StoreUnavailableError  the store could not be reached at all (or its file does not exist)
        └── StoreNotEmptyError     a restore or migration into a store that holds data (also a BadInputError)

The command line maps these to exit statuses (``cmdb.cli_conventions.exit_code_for``): NotFoundError 3,
BadInputError / SchemaError / ConfigError 2, StoreError 4, anything else 1.
"""

from __future__ import annotations


class CmdbError(Exception):
    """Base of every error the CMDB raises on purpose."""


class SchemaError(CmdbError):
    """The schema or a schema extension is malformed."""


class BadInputError(CmdbError):
    """Input (a batch, a file, an argument) is invalid; nothing was written."""


class UnknownClassError(BadInputError):
    """A CI class or relationship type that the schema does not define."""


class NotFoundError(CmdbError):
    """The CI, relationship or run asked for does not exist."""


class ConfigError(CmdbError):
    """A configuration value, store URL or secret reference is unusable."""


class StoreError(CmdbError):
    """The store failed; the batch in flight was rolled back."""


class StoreUnavailableError(StoreError):
    """The store could not be reached."""


class StoreNotEmptyError(StoreError, BadInputError):
    """A restore or migration was pointed at a store that already holds data: the command, not the store,
    is wrong."""
