"""What an archive holds, learned before it is opened: so a hostile one is refused at no cost."""

from __future__ import annotations

from typing import IO, Optional

__all__ = ["zip_entry_count"]

_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"


def zip_entry_count(f: IO[bytes]) -> Optional[int]:
    """The number of entries a zip archive's end record declares (``zipfile`` reads every entry of
    the central directory when it opens an archive; this reads a few bytes), or None when ``f`` has
    no end record. The file position is left at the start."""
    f.seek(0, 2)
    size = f.tell()
    tail_len = min(size, 22 + 65535)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    f.seek(0)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        return None
    total = int.from_bytes(tail[at + 10 : at + 12], "little")
    if total == 0xFFFF:  # ZIP64: the real count is in the ZIP64 end record
        loc = tail.rfind(_ZIP64_LOCATOR, 0, at)
        if loc >= 0 and len(tail) >= loc + 20:
            f.seek(int.from_bytes(tail[loc + 8 : loc + 16], "little"))
            record = f.read(56)
            f.seek(0)
            if record[:4] == _ZIP64_EOCD and len(record) >= 40:
                total = int.from_bytes(record[32:40], "little")
    return total
