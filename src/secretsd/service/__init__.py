"""The Secrets Manager operations, between the wire (``secretsd.api``) and the store.

The service takes request members (decoded JSON) and returns response members; it knows
nothing of HTTP, signatures or sockets. It reads and edits secrets through the storage
interface and the pure rules of ``secretsd.model``, and tells the rotation machinery, through
the ``RotationRequests`` it was built with, when a RotateSecret wants a rotation now.
"""

from secretsd.service.accesses import AccessRecorder
from secretsd.service.edits import Edit
from secretsd.service.rotation_requests import RotationRequests
from secretsd.service.secrets import SecretsService

__all__ = ["AccessRecorder", "Edit", "RotationRequests", "SecretsService"]
