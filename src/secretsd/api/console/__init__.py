"""The web console served at ``/console``: pages over the same service operations as the API."""

from .app import ConsoleApp
from .operations import ConsoleOperations
from .sessions import KeyCheck, Sessions, SignInLinks

__all__ = ["ConsoleApp", "ConsoleOperations", "KeyCheck", "Sessions", "SignInLinks"]
