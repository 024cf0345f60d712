# host_server.server_b.backend: the crypto backend of server B: the core's pyca backend with
# server-side speed-ups, same contract, and self-tested like any backend
# (airshake.crypto.selftest) before use.
#   - OpenSSL derives the public key whenever a raw X25519 / P-256 private key is
#     loaded: a scalar multiplication per load, and the core loads its keys on every DH.
#     B's static keys are loaded once (pin), an ephemeral once per handshake (kept until
#     forget(), which the dispatcher calls when the handshake's m2 is computed).
#   - A peer's public key is parsed once per handshake (G_X serves ee and es).
#   - SHA-256 and HMAC-SHA-256 as PycaBackend has them (hashlib's OpenSSL, one C call).
# Secrets: the loaded key objects stay in memory only as long as the raw bytes the core
# holds; forget() drops the ephemerals and the parsed peer keys.
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from airshake.crypto import primitives_for
from airshake.crypto import selftest
from airshake.crypto.pyca import PycaBackend, need, p256_point, p256_private
from airshake.errors import BackendError, InvalidPoint

_X962 = (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
_RECENT = 16


class ServerBackend(PycaBackend):
    name = "pyca-server"

    def __init__(self) -> None:
        self._pinned: dict[bytes, Any] = {}
        self._recent: OrderedDict[bytes, Any] = OrderedDict()
        self._peers: dict[bytes, Any] = {}       # parsed X25519 public keys, until forget()

    # -- key objects ------------------------------------------------------------------
    def _key(self, priv: bytes, load: Any) -> Any:
        if type(priv) is not bytes:
            priv = bytes(priv)
        key = self._pinned.get(priv)
        if key is None:
            key = self._recent.get(priv)
            if key is None:
                key = self._recent[priv] = load(priv)
                if len(self._recent) > _RECENT:
                    self._recent.popitem(last=False)
        return key

    def pin(self, priv: bytes, curve: str) -> None:
        """Keep B's static private key loaded for the life of the process."""
        priv = bytes(priv)
        self._pinned[priv] = _x25519_key(priv) if curve == "x25519" else p256_private(priv)

    def forget(self) -> None:
        """Drop the ephemeral keys loaded and the peer keys parsed since the last call."""
        self._recent.clear()
        self._peers.clear()

    # -- X25519 -----------------------------------------------------------------------
    def x25519_public(self, priv: bytes) -> bytes:
        return self._key(priv, _x25519_key).public_key().public_bytes_raw()

    def x25519(self, priv: bytes, peer: bytes) -> bytes:
        key = self._key(priv, _x25519_key)
        if type(peer) is not bytes:
            peer = bytes(peer)
        try:
            public = self._peers.get(peer)
            if public is None:
                public = self._peers[peer] = x25519.X25519PublicKey.from_public_bytes(peer)
                if len(self._peers) > _RECENT:
                    self._peers.clear()
            return key.exchange(public)
        except ValueError:  # wrong length, or the all-zero result of a low-order point
            raise InvalidPoint("X25519 public key rejected") from None

    # -- P-256 ------------------------------------------------------------------------
    def p256_public(self, priv: bytes) -> bytes:
        return self._key(priv, p256_private).public_key().public_bytes(*_X962)

    def p256_ecdh(self, priv: bytes, peer: bytes) -> bytes:
        key = self._key(priv, p256_private)
        return key.exchange(ec.ECDH(), p256_point(peer))


def _x25519_key(priv: bytes) -> x25519.X25519PrivateKey:
    need(priv, 32, "X25519 private key")
    return x25519.X25519PrivateKey.from_private_bytes(priv)


def pin_server_keys(backend: ServerBackend, keys: list[Any]) -> None:
    """Keep B's X25519 / P-256 static keys (core ServerKey objects) loaded."""
    for key in keys:
        if key.suite != 1:
            backend.pin(key.private, "p256" if key.suite == 2 else "x25519")
    backend.forget()


def load_server_backend(suites: tuple[int, ...] = (0, 1, 2)) -> ServerBackend:
    """A ServerBackend that passed the known-answer tests of what these suites use."""
    backend = ServerBackend()
    failed = selftest.run(backend, primitives_for(suites))
    backend.forget()
    if failed:
        raise BackendError("server crypto backend failed self-tests: " + ", ".join(failed))
    return backend

