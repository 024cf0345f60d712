# host_server.lorawan: server B reached through a LoRaWAN network server (ChirpStack v4, The
# Things Stack v3) over its MQTT application integration.
