# host_server.lorawan: server B reached through a LoRaWAN network server (ChirpStack v4, The
# Things Stack v3) over its MQTT application integration (docs/LORAWAN.md). Imports
# nothing itself; its modules:
#   settings   the --lorawan/--mqtt/... settings and their checks (LorawanConfig)
#   formats    topics and payloads of both network servers (chirpstack_api's types)
#   pacing     class A rules on B's side: one downlink per uplink, dedupe, replace
#   bridge     LorawanBridge: the MQTT client inside B (server_b.server runs it)
#   standin    NetworkStandin: a network server for the tests and the demo
#   udp_air    its radio side for UDP devices (the demo)
#   broker     Mosquitto: a broker for the tests and the demo
#   demo_path  the demo's --via chirpstack|tts path
