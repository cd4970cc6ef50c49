"""The Secrets Manager operations, between the wire (``secretsd.api``) and the store.

The service takes request members (decoded JSON) and returns response members; it knows
nothing of HTTP, signatures or sockets. It reads and edits secrets through the storage
interface and the pure rules of ``secretsd.model``, and tells the rotation machinery, through
the ``RotationRequests`` it was built with, when a RotateSecret wants a rotation now.
"""

import os
from pathlib import Path

from secretsd.service.accesses import AccessRecorder
from secretsd.service.edits import Edit
from secretsd.service.rotation_requests import RotationRequests
from secretsd.service.secrets import SecretsService

# The layers above (api, rotation) know the service, not the store: a store that cannot be
# opened or reached reaches them as this error, re-exported.
from secretsd.store import StorageError, open_storage

__all__ = [
    "AccessRecorder",
    "Edit",
    "RotationRequests",
    "SecretsService",
    "StorageError",
    "open_service",
]


def open_service(
    data_dir: str | os.PathLike[str],
    database_url: str | None = None,
    *,
    schema: str = "secretsd",
    master_key_command: str | None = None,
    master_key_kms: str | None = None,
) -> SecretsService:
    """A service over the existing store in ``data_dir`` (or at ``database_url``), for
    commands that read the store without a running server: nothing is created, a missing
    directory, store or key is an error naming it. The caller closes ``service.storage``."""
    storage = open_storage(
        Path(data_dir),
        database_url,
        schema=schema,
        master_key_command=master_key_command,
        master_key_kms=master_key_kms,
    )
    return SecretsService(storage)
