"""Competitors measured by running their real implementations (the benchmark issue: "Every
comparison must be measured in one run by running the real implementations, not quoted").

- edhoc: EDHOC method 3, cipher suite 2, with lakers-python (RFC 9528).
- tls13: TLS 1.3 with mutual certificate authentication, CPython ssl / OpenSSL.
- priorart: the four-message flow of WO 99/25093 Fig. 1, sized from real certificates.
"""

from .edhoc import edhoc_handshakes_per_second, edhoc_messages
from .priorart import prior_art_messages
from .tls13 import tls13_handshakes_per_second, tls13_messages

__all__ = [
    "edhoc_messages",
    "edhoc_handshakes_per_second",
    "tls13_messages",
    "tls13_handshakes_per_second",
    "prior_art_messages",
]
