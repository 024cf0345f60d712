# tests/mprun.py: runs the portable tests on the MicroPython unix binary.
# Usage: micropython -X heapsize=64M tests/mprun.py tests/portable/test_x.py [...]
# Each file is imported and each top-level function named test_* is called with no
# arguments, and the file is let go before the next one. Prints one line per failure and
# the plain closing line
# "N passed, N failed"; exits 1 if anything failed.
import gc
import sys

sys.path.insert(0, "firmware/lib")
sys.path.insert(0, "tests/portable")
sys.path.insert(0, ".")             # testkit/


def _module_name(path):
    name = path.split("/")[-1]
    return name[:-3] if name.endswith(".py") else name


def run(paths, only=None):
    passed = failed = 0
    for path in paths:
        name = _module_name(path)
        try:
            mod = __import__(name)
        except Exception as e:
            print("FAIL", name, "(import)", type(e).__name__, e)
            sys.print_exception(e)
            failed += 1
            continue
        for attr in sorted(dir(mod)):
            if not attr.startswith("test_") or (only and only not in attr):
                continue
            fn = getattr(mod, attr)
            if not callable(fn):
                continue
            try:
                fn()
                passed += 1
            except Exception as e:
                failed += 1
                print("FAIL", name + "." + attr, type(e).__name__, e)
                sys.print_exception(e)
        # a file's tables and vectors go before the next file runs: on a device-sized
        # heap (the twin's) they would otherwise pile up and fragment it
        sys.modules.pop(name, None)
        mod = fn = None
        gc.collect()
    return passed, failed


def main():
    args = sys.argv[1:]
    only = None
    if args and args[0] == "-k":
        only = args[1]
        args = args[2:]
    passed, failed = run(args, only)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


main()
