# airshake.consttime: comparison of secret-dependent bytes in time independent of
# where they differ. Every MAC, tag and key-hash comparison in airshake goes through here.


def equal(a, b):
    """True if a == b, examining every byte regardless of mismatches."""
    if len(a) != len(b):
        return False
    acc = 0
    for i in range(len(a)):
        acc |= a[i] ^ b[i]
    return acc == 0
