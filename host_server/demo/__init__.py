# host_server.demo: `airshake demo`, the whole system on one machine. A CA, the
# certificate store (SQLite), server B and the link emulator run as subprocesses; each
# device is the real firmware on the MicroPython unix binary, deployed and provisioned
# through the device tools; a live display names every radio frame, and a summary, a
# comparison with the patent's prior art and a sequence diagram (SVG) follow.
#
# Modules: options (the settings), procs (subprocesses, always stopped), services (CA,
# CS, B, relay), probe (UDP taps that record each datagram's bytes), devices (deploy,
# provision, run the firmware), monitor (turns the streams into steps), display (the
# terminal), summary (numbers and the comparison), diagram (the SVG), run (the order).
