"""Competitors measured by running their real implementations (the benchmark issue: "Every
comparison must be measured in one run by running the real implementations, not quoted").

- edhoc: EDHOC method 3, cipher suite 2, with lakers-python (RFC 9528).
- tls13: TLS 1.3 with mutual certificate authentication, CPython ssl / OpenSSL.
- priorart: the four-message flow of WO 99/25093 Fig. 1, sized from real certificates.
"""
# host_server.competitors: imported by module (edhoc, tls13, priorart), never all at once,
# so a missing dependency (lakers for EDHOC) costs only its own module. Used by the demo's
# summary and by bench/.
