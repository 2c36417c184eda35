"""Errors of the provisioning registry.

    RegistryError            anything the registry refuses
    ├── NotFound             no gateway/device with that id
    ├── AlreadyExists        the id is taken
    └── InvalidEntry         the entry breaks a validation rule (`problems` lists each one)
"""

from __future__ import annotations


class RegistryError(Exception):
    """The registry refuses the operation."""


class NotFound(RegistryError):
    """No gateway or device with that id."""


class AlreadyExists(RegistryError):
    """The id is already registered."""


class InvalidEntry(RegistryError):
    """The entry breaks one or more validation rules."""

    def __init__(self, what: str, problems: list[str]) -> None:
        super().__init__(f"{what}: " + "; ".join(problems))
        self.problems = problems
