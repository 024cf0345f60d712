# host_server.device: the host side of `airshake device ...`: serial ports, flashing a
# MicroPython image with esptool, deploying firmware/ with mpremote, provisioning a device's
# key and configuration, and following its log. Each step lives in its own module; all of
# them talk to the board only through esptool or mpremote subprocesses.
