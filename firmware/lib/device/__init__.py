# device: the application firmware of device A (wake cycle, key store, clock, session
# store, sensor, link). The protocol itself is airshake/; radios are radios/.
# The device's files live in `airshake-data/` (device.files): a name that is not a Python
# identifier, so it can never be imported in place of the core package. Earlier firmware
# kept them in `airshake/`, which did shadow it; importing `device` moves such a
# directory to its new name, so an updated device keeps its key, settings and session.
from device import files

files.migrate_old_dir()
