# radios: owns the choice of radio driver: open_radio(board, config) returns an
# (unopened) Radio for config["radio"] or, by default, board.RADIO. Drivers are
# imported lazily so a device loads only the one it uses.
#   "udp"      radios.udp.UdpRadio(host, port, mtu, wifi)  (config["server"], wifi.json)
#   "lora"     radios.lora.LoraRadio(board, config)         (board.PINS, board.LORA)
#   "lorawan"  radios.lorawan_at.LorawanRadio(board, config) (board.LORAWAN)
#   "cellular" radios.cellular_at.CellularRadio(board, config) (board.CELLULAR, config["server"])
# The contract every driver implements is radios.base.Radio.
from radios.base import RadioError


def radio_kind(board, config):
    return config.get("radio") or getattr(board, "RADIO", "udp")


def open_radio(board, config, log=None, airtime=None):
    """log: optional callable(text) for driver progress (AT traffic, joins); the drivers
    mask their secrets in it. airtime: the raw-LoRa duty-cycle budget's state from an
    earlier wake (LoraRadio.airtime_state())."""
    kind = radio_kind(board, config)
    if kind == "udp":
        from radios.udp import UdpRadio
        server = config.get("server") or {}
        wifi = None
        creds = _wifi_credentials()
        if creds:
            wifi = (creds.get("ssid"), creds.get("password"))
        return UdpRadio(server.get("host", "127.0.0.1"), server.get("port", 8471),
                        config.get("mtu") or 1200, wifi)
    if kind == "lora":
        from radios.lora import LoraRadio
        return LoraRadio(board, config, log, airtime)
    if kind == "lorawan":
        from radios.lorawan_at import LorawanRadio
        return LorawanRadio(board, config, log)
    if kind == "cellular":
        from radios.cellular_at import CellularRadio
        return CellularRadio(board, config, log)
    raise RadioError("unknown radio %r (udp, lora, lorawan, cellular)" % (kind,))


def _wifi_credentials():
    # airshake-data/wifi.json, optional; only read here, never printed
    try:
        import json
        with open("airshake-data/wifi.json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
