# airshake_tools.linkemu: a link emulator for airshake. A sans-I/O model of LoRa,
# LoRaWAN class A, NB-IoT and LTE-M links (model.Link, model.cost) that tests use
# in-process, and a UDP relay process (relay.py, `python -m airshake_tools.linkemu`) that
# puts the model between real devices and server B, in real or virtual time. For raw
# LoRa on the unix port: the air (air.py), a GWMP gateway simulator (gwmp_gateway.py) and,
# in MP_PATH, the MicroPython stand-ins the firmware runs on (`lora`, `machine`).
from pathlib import Path

from airshake_tools.linkemu.faults import Faults
from airshake_tools.linkemu.lora import time_on_air
from airshake_tools.linkemu.model import Delivery, Link, cost, fragment_sizes
from airshake_tools.linkemu.profiles import PROFILES, Profile, get_profile

MP_PATH = Path(__file__).resolve().parent / "mp"   # put on a unix device's MICROPYPATH

__all__ = ["Delivery", "Faults", "Link", "MP_PATH", "PROFILES", "Profile", "cost",
           "fragment_sizes", "get_profile", "time_on_air"]
