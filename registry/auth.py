"""Optional HTTP basic auth for the registry port, credentials read from files.

``--basic-auth-dir`` names a directory holding ``username`` and ``password`` files (a mounted
Secret). Every /v2 request must then carry matching credentials; peers forward them. The
credentials are never logged.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str

    def __repr__(self) -> str:  # never show the password in logs or tracebacks
        return f"BasicAuth(username={self.username!r}, password=***)"

    @classmethod
    def from_dir(cls, directory: str) -> BasicAuth | None:
        if not directory:
            return None
        base = Path(directory)
        username = (base / "username").read_text().strip()
        password = (base / "password").read_text().strip()
        if not username or not password:
            raise ValueError(f"empty username or password file in {directory}")
        return cls(username, password)

    @property
    def header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"

    def check(self, authorization: str | None) -> bool:
        return bool(authorization) and hmac.compare_digest(
            authorization.strip().encode(), self.header.encode()
        )
