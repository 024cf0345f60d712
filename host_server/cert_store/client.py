# host_server.cert_store.client: a small synchronous client of the certificate store's HTTP API
# (docs/CS_API.md) for the `airshake cs` admin commands and scripts; it sends the admin
# (or reader) token it is given. Every failure is one UserError line: the store
# unreachable, the token refused, or the store's own one-line refusal.
from __future__ import annotations

import base64
from typing import Any

import httpx

from host_server.cert_store import DEFAULT_URL, TOKEN_ENV
from host_server.errors import UserError


class CSClient:
    def __init__(self, url: str = DEFAULT_URL, token: str | None = None,
                 timeout: float = 10.0):
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"CSClient({self.url!r})"

    def _request(self, method: str, path: str, what: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            r = httpx.request(method, self.url + path, headers=headers,
                              timeout=self._timeout, **kw)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            raise UserError(f"bad certificate store URL {self.url!r}: write "
                            "http://HOST:PORT")
        except httpx.TimeoutException:
            raise UserError(f"the certificate store at {self.url} did not answer in "
                            f"{self._timeout:g} s: check that it is healthy")
        except httpx.TransportError:
            raise UserError(f"cannot reach the certificate store at {self.url}: is "
                            "`airshake cs serve` running?")
        if r.status_code in (401, 403):
            raise UserError(f"the certificate store refused to {what}: the token is wrong "
                            f"or is not the admin token (use STATE_DIR/admin.token of the CS "
                            f"via --state-dir, or ${TOKEN_ENV})")
        if r.status_code >= 400:
            raise UserError(f"the certificate store refused to {what}: {_reason(r)}")
        return r

    def _json(self, r: httpx.Response) -> Any:
        try:
            return r.json()
        except ValueError:
            raise UserError(f"{self.url} answered something that is not JSON: is it an "
                            "airshake certificate store?")

    def enroll_key(self, name: str, spki_der: bytes) -> dict:
        """Enroll a device key; returns {"id", "certificate", "not_after"}."""
        body = {"name": name, "public_key": base64.b64encode(spki_der).decode()}
        return self._json(self._request("POST", "/enroll", "enroll the key", json=body))

    def enroll_cert(self, der: bytes, name: str | None = None) -> dict:
        """Enroll a certificate issued elsewhere by this CA."""
        body: dict[str, str] = {"certificate": base64.b64encode(der).decode()}
        if name:
            body["name"] = name
        return self._json(self._request("POST", "/enroll", "enroll the certificate",
                                        json=body))

    def revoke(self, id_hex: str, reason: str) -> dict:
        return self._json(self._request("POST", f"/revoke/{id_hex}", f"revoke {id_hex}",
                                        json={"reason": reason}))

    def certs(self) -> list[dict]:
        return self._json(self._request("GET", "/certs", "list certificates"))["certs"]

    def cert(self, id_hex: str) -> bytes:
        """C_A (DER) of id_hex; UserError if absent or revoked."""
        return self._request("GET", f"/certs/{id_hex}", f"give {id_hex}").content


def _reason(r: httpx.Response) -> str:
    try:
        data = r.json()
        text = data.get("error") if isinstance(data, dict) else None
        if text is None and isinstance(data, dict) and "revoked_at" in data:
            text = f"{data.get('id')} is revoked ({data.get('reason')})"
    except ValueError:
        text = None
    text = text or f"HTTP {r.status_code} {r.reason_phrase}"
    return " ".join(str(text).split())[:300]
