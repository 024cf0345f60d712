# boards/twin/manifest.py: the 32-bit unix "device twin" (tools/build_firmware.py twin):
# the same frozen firmware as every ESP32 board (boards/frozen/manifest.py), built into
# the MicroPython unix port with MICROPY_FORCE_32BIT=1 so that the tests run the code as
# a device holds it (frozen bytecode in ROM, 32-bit pointers and small ints) under an
# ESP32-sized heap. The radio drivers are left out: micropython-lib's lora packages need
# machine.SPI/Pin, and a frozen `lora` would shadow the tests' stand-in package.
# ruff: noqa: F821 (include is the manifest's built-in)
include("../frozen/manifest.py")
# The portable tests run both roles on the twin, so it also freezes B's C509 encoder, which
# the board images leave out (boards/frozen/manifest.py: host-only); a device never loads it.
package("airshake", files=["c509_encoder.py"], base_path="../../firmware/lib")
# The bench's device program, testkit/handshake_client.py, frozen as a board's main.py is:
# the frozen rows of make bench run it as `-m handshake_client` (bench/device_cost.py), so
# its code stays out of the heap as a device's main program does; heap_trace is its
# "trace" mode's proxy. Test code, in the twin only: the boards' images do not have it.
module("handshake_client.py", base_path="../../testkit")
module("heap_trace.py", base_path="../../testkit")
