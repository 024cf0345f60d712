# host_server.server_b: server B, the asyncio UDP service that answers devices' handshakes with
# the core's Responders, looks their certificates up in the certificate store (CS) and
# hands application data to a sink. Entry point: `airshake server` (host_server.server_b.cli).
