"""Static bearer tokens (kube-apiserver's ``--token-auth-file``): a CSV file with lines
``token,user,uid,"group1,group2"`` (groups optional). Read once at start; a line that cannot
be parsed is an error at start, as in Kubernetes.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from controlplane.machinery.userinfo import UserInfo


class TokenFileError(ValueError):
    pass


def parse(text: str) -> dict[str, UserInfo]:
    out: dict[str, UserInfo] = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 3:
            raise TokenFileError(f"token file line {n}: want token,user,uid[,\"groups\"], got {len(row)} fields")
        token, user, uid = (c.strip() for c in row[:3])
        if not token or not user:
            raise TokenFileError(f"token file line {n}: empty token or user")
        groups = [g.strip() for g in row[3].split(",") if g.strip()] if len(row) > 3 else []
        out[token] = UserInfo.make(user, groups, uid)
    return out


class TokenFile:
    def __init__(self, tokens: dict[str, UserInfo]) -> None:
        self.tokens = tokens

    @classmethod
    def load(cls, path: str | Path) -> "TokenFile":
        return cls(parse(Path(path).read_text()))

    def authenticate(self, token: str) -> UserInfo | None:
        return self.tokens.get(token)
