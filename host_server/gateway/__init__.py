# host_server.gateway: raw-LoRa airshake frames through standard LoRa gateways, over the
# Semtech UDP packet-forwarder protocol (GWMP), to and from server B.
