# boards/unix.py: the MicroPython unix binary (development and the host tests). No pins;
# the radio is UDP to server B or to the link emulator (config.json "server"); no deep
# sleep: main.py runs --cycles N wakes in one process.
NAME = "unix"
CHIP = "unix"
RADIO = "udp"
PINS = {}
LED = None
SENSOR = None
DEEP_SLEEP = False
