# boards/board.pyi: the schema of a board data module (boards/<name>.py, deployed as
# board.py). Used only by the type check (tests/host/test_firmware_static.py), never
# deployed. Every board defines NAME, CHIP, RADIO, PINS and DEEP_SLEEP, plus the
# settings dict of its radio (LORA, LORAWAN or CELLULAR).
from typing import Any

NAME: str
CHIP: str                     # "esp32" | "esp32s3" | "unix"
RADIO: str                    # "lora" | "lorawan" | "cellular" | "udp"
PINS: dict[str, int]
DEEP_SLEEP: bool
LED: int | None
LED_ACTIVE_LOW: bool
SENSOR: str | None
LORA: dict[str, Any]          # micropython-lib lora configure() keys
LORA_CHIP: str                # "sx1276" | "sx1262"
SX126X: dict[str, Any]        # extra SX1261/SX1262 constructor arguments
LORAWAN: dict[str, Any]       # module, uart, tx, rx, baud, region, dr, port[, reset]
CELLULAR: dict[str, Any]      # module, uart, tx, rx, baud, pwrkey, apn[, dtr]
UNLOCK_PIN: int                # held low within 3 s of a reset opens a locked console
                               # after erasing the secrets (device.lock; default 0)
