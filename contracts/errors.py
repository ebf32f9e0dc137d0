"""The one error root of `contracts`."""

from __future__ import annotations


class ContractError(ValueError):
    """Data does not satisfy a Vigil contract.

    `reason` is a stable code from `contracts.ReasonCode`; `field` is a dotted
    path into the message (or None when the message as a whole is at fault).
    """

    def __init__(self, reason: str, detail: str, field: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.field = field
        super().__init__(f"{reason}: {field + ': ' if field else ''}{detail}")
